"""A browser session's login and logout (DRF's pages), for the API docs' "Try it out"."""

from django.contrib.auth.views import LogoutView
from django.urls import path

from shop.views import BrowserLoginView

# DRF's login page names its form's target as rest_framework:login.
app_name = "rest_framework"

urlpatterns = [
    path("login/", BrowserLoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
]
