"""Log-in and token lockout (workbench.lockout) and DRF's throttles.

The finding: 30 wrong passwords, then the right one worked. Now, after the limit, every
attempt for the account or from the address is refused (the right one too) until the
lock ends: 429 with Retry-After, JSON for the API, a message on the log-in page.
"""

from __future__ import annotations

import time
from typing import Any
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from conftest import PASSWORD
from tests.helpers import CT_SMALL, ingest
from workbench.models import AuditEvent, Patient

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _limits(settings: Any) -> None:
    settings.LOCKOUT_ACCOUNT_FAILURES = 5
    settings.LOCKOUT_IP_FAILURES = 8
    settings.LOCKOUT_SECONDS = 600


def log_in(client: Client, username: str, password: str, address: str = "10.0.0.1") -> Any:
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def test_right_password_is_refused_after_too_many_wrong_ones(cast: dict[str, Any]) -> None:
    client = Client()
    for _ in range(4):
        assert log_in(client, "bob", "wrong").status_code == 200
    locked = log_in(client, "bob", "wrong")
    assert locked.status_code == 429
    right = log_in(client, "bob", PASSWORD)
    assert right.status_code == 429
    assert 500 < int(right["Retry-After"]) <= 600
    assert "Too many failed log-in attempts for this account" in right.content.decode()
    assert "_auth_user_id" not in client.session
    # Another account from another address is not affected.
    assert log_in(Client(), "carol", PASSWORD, address="10.0.0.2").status_code == 302


def test_lock_ends_after_its_period(cast: dict[str, Any]) -> None:
    client = Client()
    for _ in range(5):
        log_in(client, "bob", "wrong")
    assert log_in(client, "bob", PASSWORD).status_code == 429
    later = time.time() + 601
    with mock.patch("workbench.lockout.time.time", return_value=later):
        assert log_in(client, "bob", PASSWORD).status_code == 302


def test_a_good_log_in_resets_the_account_count(cast: dict[str, Any]) -> None:
    for _ in range(2):
        for _ in range(4):
            log_in(Client(), "bob", "wrong", address="10.0.0.3")
        assert log_in(Client(), "bob", PASSWORD, address="10.0.0.4").status_code == 302


def test_one_address_guessing_many_accounts_is_locked(cast: dict[str, Any]) -> None:
    names = ["alice", "bob", "carol", "dave", "erin", "charlie", "alice", "bob"]
    for name in names:  # under each account's limit, at the address's limit
        log_in(Client(), name, "wrong", address="10.9.9.9")
    refused = log_in(Client(), "dave", PASSWORD, address="10.9.9.9")
    assert refused.status_code == 429
    assert "your network address" in refused.content.decode()
    assert log_in(Client(), "dave", PASSWORD, address="10.9.9.10").status_code == 302


def test_lockout_is_audited_once(cast: dict[str, Any]) -> None:
    for _ in range(7):
        log_in(Client(), "bob", "wrong")
    events = AuditEvent.objects.filter(action="auth.lockout")
    assert events.count() == 1
    event = events.get()
    assert (event.actor_name, event.object_type) == ("bob", "account")
    assert event.details["via"] == "login" and event.details["address"] == "10.0.0.1"


def test_proxy_header_names_the_client(cast: dict[str, Any], settings: Any) -> None:
    settings.LOCKOUT_CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    for k in range(8):
        Client().post(
            reverse("login"), {"username": f"nobody{k}", "password": "x"}, HTTP_X_FORWARDED_FOR="spoof, 192.0.2.7"
        )
    other = Client().post(reverse("login"), {"username": "bob", "password": PASSWORD}, HTTP_X_FORWARDED_FOR="192.0.2.8")
    assert other.status_code == 302  # same REMOTE_ADDR, another client behind the proxy
    same = Client().post(reverse("login"), {"username": "bob", "password": PASSWORD}, HTTP_X_FORWARDED_FOR="192.0.2.7")
    assert same.status_code == 429


def test_token_guessing_locks_the_address_even_for_a_valid_token(cast: dict[str, Any]) -> None:
    url = reverse("api-projects")
    guesser = APIClient(REMOTE_ADDR="10.1.1.1")
    for k in range(7):
        guesser.credentials(HTTP_AUTHORIZATION=f"Token {k:040d}")
        assert guesser.get(url).status_code == 401
    guesser.credentials(HTTP_AUTHORIZATION=f"Token {'f' * 40}")
    eighth = guesser.get(url)
    assert eighth.status_code == 429
    valid = Token.objects.create(user=cast["bob"]).key
    guesser.credentials(HTTP_AUTHORIZATION=f"Token {valid}")
    refused = guesser.get(url)
    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/json"
    body = refused.json()
    assert body["error"] == "locked_out" and "network address" in body["message"]
    assert 500 < int(refused["Retry-After"]) <= 600
    # The same token from another address works; session log-in from the locked one does not.
    other = APIClient(REMOTE_ADDR="10.1.1.2")
    other.credentials(HTTP_AUTHORIZATION=f"Token {valid}")
    assert other.get(url).status_code == 200
    assert log_in(Client(), "bob", PASSWORD, address="10.1.1.1").status_code == 429
    event = AuditEvent.objects.get(action="auth.lockout")
    assert (event.object_type, event.details["via"]) == ("address", "token")


def test_vault_lookups_are_throttled(api_as: Any, project_a: Any, cast: dict[str, Any], run_tasks: Any) -> None:
    with run_tasks():
        ingest(project_a, {"ct.dcm": CT_SMALL.read_bytes()}, user=cast["alice"])
    url = reverse("api-vault-lookup", args=[project_a.pk])
    body = {"pseudonym": Patient.objects.get().pseudo_id, "reason": "Incidental finding, IRB 2026-14"}
    carol = api_as("carol")
    with mock.patch.dict(ScopedRateThrottle.THROTTLE_RATES, {"vault": "2/hour"}):
        assert [carol.post(url, body).status_code for _ in range(2)] == [200, 200]
        third = carol.post(url, body)
    assert third.status_code == 429
    assert third.json()["error"] == "throttled" and int(third["Retry-After"]) > 0
    assert AuditEvent.objects.filter(action="vault_lookup").count() == 2


def test_settings_throttle_every_api_view() -> None:
    from rest_framework.settings import api_settings

    names = [cls.__name__ for cls in api_settings.DEFAULT_THROTTLE_CLASSES]
    assert names == ["AnonRateThrottle", "UserRateThrottle", "ScopedRateThrottle"]
    assert {"anon", "user", "vault"} <= set(api_settings.DEFAULT_THROTTLE_RATES)


def test_lockout_counters_are_shared_between_processes() -> None:
    """gunicorn runs several workers: a per-process cache would multiply the attempts."""
    from django.conf import settings

    backend = settings.CACHES["default"]["BACKEND"]
    assert backend.rsplit(".", 1)[-1] in {"DatabaseCache", "RedisCache"}
    assert settings.CACHES["throttle"]["BACKEND"].rsplit(".", 1)[-1] != "DatabaseCache"


def test_the_admin_log_in_is_locked_out_too() -> None:
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("root", password="root-password-9")
    client = Client()
    url = reverse("admin:login")
    for _ in range(5):
        client.post(url, {"username": "root", "password": "wrong"}, REMOTE_ADDR="10.0.0.9")
    right = client.post(url, {"username": "root", "password": "root-password-9"}, REMOTE_ADDR="10.0.0.9")
    assert right.status_code == 200 and "_auth_user_id" not in client.session
    assert "Too many failed log-in attempts for this account" in right.content.decode()
