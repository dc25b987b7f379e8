"""Every URL pattern, walked from the resolver, against anonymous, an outsider, a former member and
each role of the project, checked against the rule table in access_rules.py.

One test makes every request and reports every failure at once. Each request runs in a savepoint
that is rolled back, so each one meets the same world (a discard does not hide the item from the
next role). Roles call the API with their token and pages with a session; the former member (membership
deleted) and a demoted reader (now compliance only, checked on their own old read) call
everything both ways.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import transaction
from django.test import Client
from django.urls import URLResolver, get_resolver, path, reverse
from django.views.generic import View
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.security.access_rules import ROLES, RULES, Ctx, Pattern, Rule, rules_of, unclassified, walk
from tests.security.world import build_world

_KWARG = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>[^)]*\)")
DENIED = (401, 403, 404)
# The demoted reader is judged as what they are now; their own old read is as hidden as anyone's.
ROLE_NOW = {"demoted": "compliance"}


def _is_api(route: str) -> bool:
    return route.startswith(("api/", "wado/"))


def _url(pattern: Pattern, ctx: Ctx, rule: Rule) -> str:
    names = [a or b for a, b in _KWARG.findall(pattern.route)]
    kwargs = {n: str(ctx[n]) for n in names}
    if pattern.name:
        url = reverse(pattern.name, kwargs=kwargs)
    else:  # only reverse() knows every converter; an unnamed pattern is filled in by hand
        url = "/" + _KWARG.sub(lambda m: kwargs[m.group(1) or m.group(2)], pattern.route).strip("^$")
    return url + (f"?{rule.query(ctx)}" if rule.query else "")


def _methods(pattern: Pattern, rules: dict[str, Rule]) -> dict[str, Rule]:
    """The rule table's methods; an API view's handlers must all be in it (a new method is a new rule)."""
    view = getattr(pattern.pattern.callback, "view_class", None) or getattr(pattern.pattern.callback, "cls", None)
    if view is not None and _is_api(pattern.route):
        handled = {m.upper() for m in ("get", "post", "put", "patch", "delete") if hasattr(view, m)}
        for method in handled - set(rules):
            rules = {**rules, method: Rule("unclassified")}
    return rules


def _expected(rule: Rule, viewer: str) -> str:
    """'ok', 'login' (sent to log in), 'admin_login', or a denial status as a string."""
    if rule.kind == "public":
        return "ok"
    if rule.kind == "admin_site":
        return "admin_login"
    if viewer == "anonymous":
        return "login"
    if rule.kind == "user":
        return "ok"
    if viewer in ("outsider", "former"):
        return "404"
    role = ROLE_NOW.get(viewer, viewer)
    if role in rule.hidden:
        return "404"
    return "ok" if role in rule.allowed else "403"


def _verdict(response: Any, expected: str, api: bool, method: str = "GET") -> str | None:
    """None when the response is what the rule expects; else what was wrong."""
    code = response.status_code
    if code >= 500:
        return f"answered {code}"
    if expected == "ok":
        return f"refused with {code}" if code in DENIED else None
    if expected == "admin_login":
        where = response.get("Location", "")
        return None if code == 302 and where.startswith("/admin/") else f"answered {code} {where}"
    if expected == "login" and not api:
        where = response.get("Location", "")
        login = reverse(settings.LOGIN_URL)
        return None if code == 302 and where.startswith(login) else f"answered {code} {where}, not a login redirect"
    wanted = (401, 403) if expected == "login" else (int(expected),)
    if code not in wanted:
        return f"answered {code}, expected {'/'.join(map(str, wanted))}"
    if api and method != "HEAD":  # a HEAD answer has no body
        try:
            message = json.loads(response.content).get("message")
        except ValueError:
            message = None
        if not message:
            return f"answered {code} without a JSON message"
    return None


class _Files:
    """The stored files as the world made them. A rolled-back request keeps its rows but not its
    file deletions (a discard removes the raw file): put them back for the next viewer."""

    def __init__(self) -> None:
        roots = [Path(settings.STORAGES[name]["OPTIONS"]["location"]) for name in ("default", "quarantine")]
        self.saved = {f: f.read_bytes() for root in roots if root.exists() for f in root.rglob("*") if f.is_file()}

    def restore(self) -> None:
        for file, data in self.saved.items():
            if not file.exists() or file.stat().st_size != len(data):
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_bytes(data)


class _Viewers:
    """Clients per viewer: anonymous, session logins, and API tokens."""

    def __init__(self, users: dict[str, Any]) -> None:
        self.users = users
        self.sessions: dict[str, Client] = {}
        self.tokens: dict[str, APIClient] = {}
        for kind, user in users.items():
            self.sessions[kind] = Client()
            token = APIClient()
            token.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get(user=user).key}")
            self.tokens[kind] = token

    def clients(self, api: bool) -> list[tuple[str, str, Any]]:
        """(viewer, how, client): roles by token on the API and by session on pages; the former
        and the demoted member both ways everywhere."""
        out: list[tuple[str, str, Any]] = [("anonymous", "none", Client())]
        for kind in (*ROLES, "outsider", "former", "demoted"):
            if api:
                out.append((kind, "token", self.tokens[kind]))
            if not api or kind in ("former", "demoted"):
                out.append((kind, "session", self._session(kind)))
        return out

    def _session(self, kind: str) -> Client:
        client = self.sessions[kind]
        if "_auth_user_id" not in client.session:  # a logout pattern ended it
            client.force_login(self.users[kind])
        return client


def _request(client: Any, method: str, url: str, body: dict[str, Any] | None, api: bool) -> Any:
    call = getattr(client, method.lower())
    if body is None:
        return call(url)
    if api:
        return call(url, json.dumps(body), content_type="application/json")
    return call(url, body)


@pytest.mark.django_db
def test_every_url_pattern_answers_each_viewer_as_its_rule_says(run_tasks: Any, monkeypatch: Any) -> None:
    missing = unclassified(get_resolver())
    assert not missing, f"URL patterns without an access rule in tests/security/access_rules.py: {missing}"
    users, ctx = build_world(run_tasks, monkeypatch)
    viewers = _Viewers(users)
    files = _Files()
    failures: list[str] = []
    requests = 0
    for pattern in walk(get_resolver()):
        rules = rules_of(pattern)
        assert rules is not None
        api = _is_api(pattern.route)
        for method, rule in _methods(pattern, rules).items():
            if rule.kind == "unclassified":
                failures.append(f"{method} {pattern.key}: the view handles {method}; the rule table does not say who")
                continue
            for viewer, how, client in viewers.clients(api):
                url = _url(pattern, ctx[viewer], rule)
                body = rule.body(ctx[viewer]) if rule.body else None
                with transaction.atomic():
                    try:
                        response = _request(client, method, url, body, api)
                    except Exception as exc:  # noqa: BLE001 - a crash is one more failure to report
                        failures.append(f"{method} {url} ({pattern.key}) as {viewer} by {how}: raised {exc!r}")
                        transaction.set_rollback(True)
                        continue
                    transaction.set_rollback(True)
                if method != "GET":
                    files.restore()
                requests += 1
                problem = _verdict(response, _expected(rule, viewer), api, method)
                if problem:
                    failures.append(f"{method} {url} ({pattern.key}) as {viewer} by {how}: {problem}")
    assert requests > 500
    assert not failures, f"{len(failures)} of {requests} requests broke the access rules:\n" + "\n".join(failures)


def test_a_pattern_without_an_access_rule_is_named() -> None:
    """A view added to the URLs but not to the rule table fails the matrix, named."""
    root = get_resolver()
    added = path("api/new-thing/<uuid:project_id>/", View.as_view(), name="api-new-thing")
    extra = URLResolver(root.pattern, [*root.url_patterns, added])
    assert unclassified(root) == []
    assert unclassified(extra) == ["api-new-thing"]
    unnamed = URLResolver(root.pattern, [path("hidden/", View.as_view())])
    assert unclassified(unnamed) == ["hidden/"]


def test_every_rule_names_a_pattern_that_exists() -> None:
    """A rule left behind by a removed view would hide a renamed one: the table stays exact."""
    keys = {p.key for p in walk(get_resolver())}
    namespaces = {p.namespace for p in walk(get_resolver())}
    stale = [k for k in RULES if k not in keys and not (k.endswith(":*") and k[:-2] in namespaces)]
    assert stale == []


def test_the_matrix_catches_an_open_door() -> None:
    """The verdicts themselves: a 200 where a 404 is due, a 500, an HTML denial on the API, a wrong redirect."""

    class Fake:
        def __init__(self, code: int, content: bytes = b"{}", location: str = "") -> None:
            self.status_code, self.content, self._location = code, content, location

        def get(self, key: str, default: str = "") -> str:
            return self._location or default

    assert _verdict(Fake(200), "404", api=True) == "answered 200, expected 404"
    assert _verdict(Fake(500), "ok", api=True) == "answered 500"
    assert _verdict(Fake(404, b"<html>"), "404", api=True) == "answered 404 without a JSON message"
    assert _verdict(Fake(404, b'{"message": "Not found."}'), "404", api=True) is None
    assert _verdict(Fake(404, b""), "404", api=True, method="HEAD") is None
    assert _verdict(Fake(403), "ok", api=False) == "refused with 403"
    assert _verdict(Fake(302, location="/elsewhere/"), "login", api=False) is not None
    assert _verdict(Fake(200), "admin_login", api=False) is not None
    member_only = Rule("project", frozenset({"admin"}), frozenset({"compliance"}))
    assert [
        _expected(member_only, v) for v in ("anonymous", "outsider", "former", "admin", "compliance", "reviewer")
    ] == [
        "login",
        "404",
        "404",
        "ok",
        "404",
        "403",
    ]
