"""The API docs (Swagger UI, ReDoc) load from the app itself: an air-gapped hospital has no CDN."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

pytestmark = pytest.mark.django_db

# Any absolute or protocol-relative URL in markup or script.
_URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|["'`]((?:https?:)?//[^"'`\s]+)["'`]""")


def _references(html: str) -> list[str]:
    return [a or b for a, b in _URL.findall(html)]


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_reference_only_same_origin_assets(cast: Any, url: str) -> None:
    client = Client()
    client.force_login(cast["alice"])
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    refs = _references(html)
    assert any("/static/drf_spectacular_sidecar/" in ref for ref in refs), refs
    for ref in refs:
        parts = urlsplit(ref)
        assert not parts.netloc and parts.scheme in ("", "data"), f"{url} loads {ref} from elsewhere"
        if ref.startswith("/static/"):
            assert finders.find(parts.path.removeprefix("/static/")), f"{ref} is not a static file of the app"


def test_swagger_ui_needs_no_inline_script(cast: Any) -> None:
    """Its start-up script is a file of its own, so a Content-Security-Policy without 'unsafe-inline' works."""
    client = Client()
    client.force_login(cast["alice"])
    html = client.get("/api/docs/").content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>\s*\S", html), "an inline <script> in /api/docs/"
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()
