"""Production-safe defaults: DEBUG off unless asked for, JSON errors under /api/, friendly pages elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.http import HttpRequest
from django.test import Client
from django.urls import include, path

ROOT = Path(__file__).resolve().parent.parent


def _boom(request: HttpRequest) -> None:
    raise RuntimeError("a bug")


# For the 500 tests (pytest.mark.urls): the app's routes plus two that fail.
urlpatterns = [
    path("api/boom/", _boom),
    path("boom/", _boom),
    path("", include("workbench.urls")),
]
handler404 = "frontend.views.not_found"
handler500 = "frontend.views.server_error"


def _setting(name: str, tmp_path: Path, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "WORKBENCH_PRODUCTION"}}
    code = f"import django; django.setup(); from django.conf import settings; print(settings.{name})"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "DJANGO_SETTINGS_MODULE": "workbench.settings", "WORKBENCH_VAR_DIR": str(tmp_path), **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_debug_is_off_by_default_and_opt_in(tmp_path: Path) -> None:
    assert _setting("DEBUG", tmp_path) == "False"
    assert _setting("DEBUG", tmp_path, DEBUG="1") == "True"
    assert _setting("DEBUG", tmp_path, DEBUG="0") == "False"


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1:8000", "[::1]:8000"])
def test_localhost_is_allowed_with_debug_off(host: str) -> None:
    assert Client().get("/login/", HTTP_HOST=host).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/nope/", "/api/projects/not-a-uuid/", "/wado/nope/"])
def test_unknown_api_paths_answer_json_404(api_as: Any, url: str) -> None:
    response = api_as("alice").get(url)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "not_found"


@pytest.mark.django_db
def test_unknown_pages_answer_the_apps_html_404(cast: Any) -> None:
    client = Client()
    client.force_login(cast["bob"])
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    body = response.content.decode()
    assert "frontend/app.css" in body and "Back to your projects" in body
    assert "URLconf" not in body and "api/" not in body  # not Django's debug page listing the routes


@pytest.mark.django_db
@pytest.mark.urls("tests.test_production_defaults")
def test_a_failing_api_view_answers_json_500() -> None:
    client = Client(raise_request_exception=False)
    response = client.get("/api/boom/")
    assert response.status_code == 500
    assert response.json() == {
        "error": "server_error",
        "message": "The server failed on this request; it was logged. Try again later.",
    }
    assert "a bug" not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.urls("tests.test_production_defaults")
def test_a_failing_page_answers_the_apps_html_500() -> None:
    response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
    assert "Server error" in response.content.decode()
    assert "a bug" not in response.content.decode()


@pytest.mark.django_db
def test_whitenoise_serves_collected_static_files_with_debug_off(settings: Any, tmp_path: Path) -> None:
    settings.STATIC_ROOT = tmp_path / "static"
    call_command("collectstatic", "--noinput", verbosity=0)
    response = Client().get("/static/frontend/app.css")
    assert response.status_code == 200
    assert b"".join(response.streaming_content)  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_too_many_files_answers_json_400(api_as: Any, project_a: Any, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    files = [SimpleUploadedFile(f"f{i}.dcm", b"x") for i in range(3)]
    response = api_as("alice").post(f"/api/projects/{project_a.pk}/batches/", {"file": files}, format="multipart")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "bad_request"
