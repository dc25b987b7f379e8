"""Every list endpoint under /api/ pages the same way: one pagination class, one envelope
({"count", "next", "previous", "results"}), the same ``page`` and ``page_size`` and bounds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from django.urls import URLPattern, URLResolver, get_resolver

from annotations import services as annotation_services
from tests.annotation_factory import make_schema, make_series
from workbench.api.pagination import Pagination

SCHEMA = yaml.safe_load((Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml").read_text())
ENVELOPE = {"count", "next", "previous", "results"}


def _json_200(operation: dict[str, Any]) -> dict[str, Any]:
    return (
        operation.get("responses", {}).get("200", {}).get("content", {}).get("application/json", {}).get("schema", {})
    )


def _list_operations() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path, item in SCHEMA["paths"].items():
        schema = _json_200(item.get("get", {}))
        if schema.get("type") == "array" or "Paginated" in schema.get("$ref", ""):
            out.append((path, item["get"]))
    return out


def test_no_get_answers_a_bare_array() -> None:
    bare = [path for path, operation in _list_operations() if _json_200(operation).get("type") == "array"]
    assert bare == []
    assert len(_list_operations()) >= 14


@pytest.mark.parametrize(("path", "operation"), _list_operations(), ids=[p for p, _ in _list_operations()])
def test_every_list_documents_the_same_envelope_and_bounds(path: str, operation: dict[str, Any]) -> None:
    name = _json_200(operation)["$ref"].rsplit("/", 1)[1]
    component = SCHEMA["components"]["schemas"][name]
    assert set(component["properties"]) == ENVELOPE and component["required"] == ["count", "results"]
    bounds = {p["name"]: p["schema"] for p in operation["parameters"] if p["name"] in ("page", "page_size")}
    assert bounds == {
        "page": {"type": "integer", "minimum": 1, "maximum": 10**9},
        "page_size": {"type": "integer", "minimum": 1, "maximum": 1000},
    }


def _api_views() -> list[Any]:
    views = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for one in patterns:
            if isinstance(one, URLResolver):
                walk(one.url_patterns, prefix + str(one.pattern))
            elif isinstance(one, URLPattern) and (prefix + str(one.pattern)).startswith("api/"):
                cls = getattr(one.callback, "view_class", None) or getattr(one.callback, "cls", None)
                if cls is not None:
                    views.append(cls)

    walk(get_resolver().url_patterns, "")
    return views


def test_every_list_view_uses_the_one_pagination_class() -> None:
    listing = [cls for cls in _api_views() if getattr(cls, "pagination_class", None) is not None]
    assert len(listing) >= 14
    assert {cls.pagination_class for cls in listing} == {Pagination}


@pytest.fixture
def lists(cast: dict[str, Any], project_a: Any) -> list[str]:
    """URLs of list endpoints with at least two rows for alice (admin) to page through."""
    make_schema(project_a)
    make_schema(project_a)
    for _ in range(2):
        annotation_services.assignment_create(
            series=make_series(project_a), readers=[cast["alice"]], user=cast["alice"]
        )
    p = project_a.pk
    return [
        f"/api/projects/{p}/assignments/",
        f"/api/projects/{p}/label-schema/versions/",
        "/api/assignments/mine/",
        f"/api/projects/{p}/studies/",
        f"/api/projects/{p}/audit/",
    ]


def test_each_list_answers_the_envelope_and_pages(lists: list[str], api_as: Any) -> None:
    alice = api_as("alice")
    for url in lists:
        first = alice.get(url, {"page_size": 1})
        assert first.status_code == 200, url
        body = first.json()
        assert set(body) == ENVELOPE, url
        assert body["count"] >= 2 and len(body["results"]) == 1 and body["previous"] is None, url
        assert "page=2" in body["next"] and "page_size=1" in body["next"], url
        second = alice.get(body["next"])
        assert second.json()["results"] != body["results"], url


@pytest.mark.parametrize(
    ("query", "field"), [({"page_size": 0}, "page_size"), ({"page_size": 1001}, "page_size"), ({"page": "x"}, "page")]
)
def test_each_list_refuses_the_same_bad_paging(
    lists: list[str], api_as: Any, query: dict[str, Any], field: str
) -> None:
    alice = api_as("alice")
    for url in lists:
        response = alice.get(url, query)
        assert response.status_code == 400, url
        assert list(response.json()["fields"]) == [field], url
