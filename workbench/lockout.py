"""Lockout of repeated failed log-ins and token guesses, counted in the shared cache.

After ``LOCKOUT_ACCOUNT_FAILURES`` wrong passwords for one account, or
``LOCKOUT_IP_FAILURES`` failed attempts (passwords or tokens) from one client address,
within ``LOCKOUT_SECONDS``, every further attempt for that account or from that
address is refused for ``LOCKOUT_SECONDS``, the right password or token included:
otherwise a guesser learns the password the moment it is right. Counters live in the
``default`` cache, which settings make shared between processes (the database cache,
or Redis when ``WORKBENCH_CACHE_URL`` is set), so that gunicorn's workers count together.

We keep this small service rather than django-axes because axes counts attempts that go
through ``django.contrib.auth.authenticate``; DRF's token authentication never does, and
token guessing is the API's attack surface. One counter for both paths keeps them in step.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from workbench.audit import audit_record

_PREFIX = "wb-lockout"


@dataclass(frozen=True)
class Lockout:
    """A refusal: which counter is locked and how many seconds remain."""

    scope: str  # "account" or "address"
    retry_after: int


def client_address(request: HttpRequest) -> str:
    """The client's address: ``REMOTE_ADDR``, or the header a trusted proxy sets (settings)."""
    header = settings.LOCKOUT_CLIENT_IP_HEADER
    value = request.META.get(header, "") if header else ""
    # A proxy appends to X-Forwarded-For; the last entry is the one it saw.
    return value.split(",")[-1].strip() or request.META.get("REMOTE_ADDR", "") or "unknown"


def _account_key(username: str) -> str:
    # Hashed: usernames are free text from the request, cache keys must be short and safe.
    return "account:" + hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]


def _address_key(address: str) -> str:
    return "address:" + hashlib.sha256(address.encode()).hexdigest()[:32]


def _keys(*, username: str | None, address: str) -> list[tuple[str, str, int]]:
    keys = [("address", _address_key(address), settings.LOCKOUT_IP_FAILURES)]
    if username:
        keys.insert(0, ("account", _account_key(username), settings.LOCKOUT_ACCOUNT_FAILURES))
    return keys


def lockout_check(*, username: str | None, address: str) -> Lockout | None:
    """The lockout that refuses this attempt now, if any. Reads only."""
    now = time.time()
    for scope, key, _limit in _keys(username=username, address=address):
        until = cache.get(f"{_PREFIX}:until:{key}")
        if until is not None and until > now:
            return Lockout(scope=scope, retry_after=max(1, int(until - now + 0.999)))
    return None


def lockout_failure_record(*, username: str | None, address: str, via: str) -> Lockout | None:
    """Count one failed attempt; lock the account or address that reaches its limit.

    Each counter expires ``LOCKOUT_SECONDS`` after its first failure. A lock is written
    to the audit log once, when it starts (the actor is the name that was tried).
    Returns the lockout that this failure started, if any.
    """
    period = settings.LOCKOUT_SECONDS
    started: Lockout | None = None
    for scope, key, limit in _keys(username=username, address=address):
        count_key = f"{_PREFIX}:count:{key}"
        cache.add(count_key, 0, timeout=period)
        try:
            count = cache.incr(count_key)
        except ValueError:  # expired between add and incr
            cache.set(count_key, 1, timeout=period)
            count = 1
        if count >= limit and cache.add(f"{_PREFIX}:until:{key}", time.time() + period, timeout=period):
            cache.delete(count_key)
            started = started or Lockout(scope=scope, retry_after=period)
            audit_record(
                action="auth.lockout",
                actor=(username or "anonymous")[:150],
                object_type=scope,
                details={"via": via, "failures": count, "seconds": period, "address": address},
            )
    return started


def lockout_success_record(*, username: str) -> None:
    """Forget an account's failures after a successful log-in (the address keeps its count,
    so that one valid account does not let a guesser reset its address)."""
    cache.delete(f"{_PREFIX}:count:{_account_key(username)}")


def lockout_message(lockout: Lockout) -> str:
    """What the person is told: why, and when to try again."""
    minutes = max(1, round(lockout.retry_after / 60))
    what = "this account" if lockout.scope == "account" else "your network address"
    return (
        f"Too many failed log-in attempts for {what}. Log-in is blocked for about {minutes} minute(s); "
        "try again later, or ask your administrator."
    )
