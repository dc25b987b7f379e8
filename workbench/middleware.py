"""Request hygiene that every view relies on, before any view runs."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

# C0 controls and DEL. No filter, id or search term legitimately holds one, and a NUL
# byte in a query makes PostgreSQL raise (a 500) instead of matching nothing.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Paths answered in JSON, as the API's own errors are.
JSON_PREFIXES = ("/api/", "/wado/")


def wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(JSON_PREFIXES)


def _bad_parameter(request: HttpRequest) -> str | None:
    """The name of the first query parameter (or 'path') holding a control character."""
    if _CONTROL.search(request.path):
        return "path"
    for name, values in request.GET.lists():
        if _CONTROL.search(name):
            return ascii(name)[1:-1]  # show the name, escaped, so the message stays printable
        if any(_CONTROL.search(value) for value in values):
            return name
    return None


class RejectControlCharacters:
    """Answer 400 to a request whose path or query string holds a NUL or other control character.

    Guarantees: no view sees such a value in ``request.GET`` or the path; under /api/ and
    /wado/ the answer is the API's JSON error shape naming the parameter, elsewhere the
    HTML error page.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        name = _bad_parameter(request)
        if name is None:
            return self.get_response(request)
        message = f"The parameter '{name}' contains a NUL byte or another control character; remove it."
        if wants_json(request):
            return JsonResponse(
                {"error": "invalid", "message": message, "fields": {name: [message]}},
                status=400,
            )
        return render(request, "frontend/error.html", {"title": "Bad request", "message": message}, status=400)
