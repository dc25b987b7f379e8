"""The log-in page, with the lockout of workbench.lockout.

A locked account or address is refused before its password is checked, so the right
password is refused too until the lock ends; the page says why and for how long, with
status 429.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpResponse

from workbench.lockout import (
    Lockout,
    client_address,
    lockout_check,
    lockout_failure_record,
    lockout_message,
    lockout_success_record,
)


class LockoutAuthenticationForm(AuthenticationForm):
    """Django's log-in form that refuses locked accounts and addresses and counts failures."""

    lockout: Lockout | None = None

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        address = client_address(self.request) if self.request is not None else "unknown"
        self.lockout = lockout_check(username=username, address=address)
        if self.lockout is None:
            try:
                cleaned = super().clean()
            except forms.ValidationError:
                self.lockout = lockout_failure_record(username=username, address=address, via="login")
                if self.lockout is None:
                    raise
            else:
                lockout_success_record(username=username)
                return cleaned
        raise forms.ValidationError(lockout_message(self.lockout), code="locked_out")


class AdminLockoutAuthenticationForm(LockoutAuthenticationForm, AdminAuthenticationForm):
    """The admin's log-in form (staff only) under the same lockout: a superuser's password is
    the one most worth guessing."""


class LoginView(auth_views.LoginView):
    template_name = "frontend/login.html"
    form_class = LockoutAuthenticationForm

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        if form.lockout is not None:
            response.status_code = 429
            response["Retry-After"] = str(form.lockout.retry_after)
        return response
