"""Browser tests: pytest-playwright driving Debian's Chromium against live_server.

Install the browser with ``apt-get install -y chromium``; without it every e2e
test is skipped with that advice. Celery runs eagerly (root conftest), so an
upload is de-identified within its request.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.servers.basehttp import WSGIServer
from django.db import connections
from django.test.testcases import LiveServerThread
from pytest_django.live_server_helper import LiveServer

# Playwright's sync API runs an event loop in the test thread; Django's ORM refuses to
# run inside one unless told it is safe, which it is here (one thread per test).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    for item in items:
        if item.get_closest_marker("e2e"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


class _SerialWSGIServer(WSGIServer):
    """Serves one request at a time (and closes each connection after it)."""

    def __init__(self, *args: Any, connections_override: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)


@pytest.fixture(scope="session")
def live_server(django_db_setup: None, django_db_blocker: Any) -> Iterator[LiveServer]:
    """pytest-django's live server, made serial when the test database is in-memory SQLite.

    An in-memory database is one connection that every server thread shares, so the
    upload page's overlapping requests (a batch upload while an earlier batch is polled)
    fail with "database table is locked". A file database needs no such care. It depends
    on django_db_setup so that it sees the test database, not the configured one.
    """
    in_memory = any(conn.vendor == "sqlite" and conn.is_in_memory_db() for conn in connections.all())
    server_class = _SerialWSGIServer if in_memory else LiveServerThread.server_class
    with mock.patch.object(LiveServerThread, "server_class", server_class):
        server = LiveServer(os.getenv("DJANGO_LIVE_TEST_SERVER_ADDRESS") or "localhost")
    yield server
    server.stop()
