from django.urls import path

from shop import api

urlpatterns = [
    path("customers/", api.CustomerSignUpApi.as_view(), name="customer-sign-up"),
    path("customers/me/", api.CustomerMeApi.as_view(), name="customer-me"),
    path("auth/token/", api.AuthTokenApi.as_view(), name="auth-token"),
    path("auth/logout/", api.LogoutApi.as_view(), name="auth-logout"),
    path("auth/logout-all/", api.LogoutEverywhereApi.as_view(), name="auth-logout-all"),
    path("auth/password/", api.PasswordChangeApi.as_view(), name="auth-password"),
]
