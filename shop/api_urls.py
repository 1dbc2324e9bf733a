from django.urls import path

from shop import views

urlpatterns = [
    path("customers/", views.CustomerSignUpApi.as_view(), name="customer-sign-up"),
    path("customers/me/", views.CustomerMeApi.as_view(), name="customer-me"),
    path("auth/token/", views.AuthTokenApi.as_view(), name="auth-token"),
    path("auth/logout/", views.LogoutApi.as_view(), name="auth-logout"),
    path("auth/logout-all/", views.LogoutEverywhereApi.as_view(), name="auth-logout-all"),
    path("auth/password/", views.PasswordChangeApi.as_view(), name="auth-password"),
]
