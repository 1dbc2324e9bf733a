"""The shop's pages for browsers: the landing page and the rate-limited session login."""

from typing import Any

from django.contrib.auth.views import LoginView
from django.forms.utils import ErrorDict
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from shop import ratelimit


def landing(request: HttpRequest) -> HttpResponse:
    """GET /: what runs here, and where to go."""
    return render(request, "shop/landing.html", {"user": request.user})


class BrowserLoginView(LoginView):
    """A browser's session login (for the API docs' "Try it out"), under the API's rate limits.

    Counted as ``POST /api/auth/token/`` is: every attempt per client address, and
    failed attempts per username; over a limit the form says when to try again (429).
    """

    template_name = "rest_framework/login.html"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        address = ratelimit.hit("login_address", ratelimit.client_address(request))
        username = str(request.POST.get("username", "")).strip().lower()
        failed = ratelimit.hit("login_user", username) if username else None
        over = [hit for hit in (address, failed) if hit is not None and hit.retry_after]
        if over:
            wait = max(hit.retry_after or 0 for hit in over)
            form = self.get_form()
            # Not validated: over the limit, the password is not even checked.
            form._errors, form.cleaned_data = ErrorDict(), {}  # type: ignore[attr-defined]
            form.add_error(None, f"Too many login attempts; try again in {wait} s.")
            response = self.render_to_response(self.get_context_data(form=form))
            response.status_code = 429
            response["Retry-After"] = str(wait)
            return response
        response = super().post(request, *args, **kwargs)
        if failed is not None and request.user.is_authenticated:
            ratelimit.refund(failed)  # a success is not counted per username
        return response
