"""Every API error is a JSON body: {"error": code, "message": text a person can act on}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

_MESSAGES = {
    "not_authenticated": "Log in, or send 'Authorization: Token <your token>'.",
    "authentication_failed": "The credentials were not accepted; check your token or password.",
    "not_found": "Not found, or you are not a member of its project.",
    "permission_denied": "Your role in this project does not allow this action.",
    "method_not_allowed": "This endpoint does not accept that HTTP method.",
    "throttled": "Too many requests; wait and try again.",
}


def _flatten(detail: Any) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return " ".join(_flatten(item) for item in detail)
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else code
    detail = response.data.get("detail") if isinstance(response.data, dict) else None
    if isinstance(exc, exceptions.ValidationError):
        message = "The request is invalid: " + _flatten(response.data)
        body: dict[str, Any] = {"error": "invalid", "message": message, "fields": response.data}
    else:
        generic = str(detail) if detail is not None else _flatten(response.data)
        is_default = generic == str(getattr(exc, "default_detail", ""))
        message = _MESSAGES.get(code, generic) if is_default else generic
        body = {"error": code, "message": message}
    response.data = body
    return response


def json_404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"error": "not_found", "message": _MESSAGES["not_found"]}, status=status.HTTP_404_NOT_FOUND)


def json_500(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {"error": "server_error", "message": "The server failed on this request; it was logged. Try again later."},
        status=500,
    )
