"""Responses that show identity are never stored by a browser or a proxy.

``Cache-Control: no-store`` forbids keeping a copy anywhere (a shared proxy, the
browser's disk cache, its back/forward cache); ``private`` and ``Pragma: no-cache``
cover HTTP/1.0 caches that ignore it. Used on the identity vault, the quarantine's
original names and redaction previews, and the pages that show them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from django.http import HttpResponseBase
from rest_framework.request import Request

NO_STORE = "no-store, no-cache, must-revalidate, private, max-age=0"

R = TypeVar("R", bound=HttpResponseBase)


def no_store(response: R) -> R:
    """Mark the response as not to be stored by any cache; returns it."""
    response["Cache-Control"] = NO_STORE
    response["Pragma"] = "no-cache"
    response["Expires"] = "0"
    return response


def no_store_view(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """A function view whose every response, errors included, is not stored."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> HttpResponseBase:
        return no_store(view(*args, **kwargs))

    return wrapped


# For DRF views: every response of the view, error answers included, is not stored.
# (A comment, not a docstring: drf-spectacular would show it as each view's description.)
class NoStoreMixin:
    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        return no_store(response)
