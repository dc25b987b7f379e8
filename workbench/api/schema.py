"""The error responses of every operation, written into the OpenAPI schema.

Every API error is the JSON body of ``workbench.api.errors`` ({"error", "message", and for
invalid input "fields"}). Which errors an operation can answer follows from what it is:
any request can be refused as malformed (400: a control character in the query, a bad
number, an invalid body) or fail on the server (500); an authenticated operation answers
401 without credentials, 403 to a role that may not act, 404 to outsiders and unknown ids
and 429 when throttled; one with a body answers 415 to another media type; one that changes
state answers 409 when the object is not in a state that allows it. A few operations add
their own (422 for an image that cannot be drawn, 416 for a range past the end).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's, with pagination only on GET: a POST that answers a list of what it
    created (assignments) is not a page."""

    def _get_paginator(self) -> Any:
        return super()._get_paginator() if self.method == "GET" else None


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An error a person can act on.",
    "properties": {
        "error": {"type": "string", "description": "A stable code, e.g. not_found or invalid."},
        "message": {"type": "string", "description": "What went wrong and what to do about it."},
        "fields": {
            "type": "object",
            "additionalProperties": {},
            "description": "For invalid input: the problems per field.",
        },
    },
    "required": ["error", "message"],
}

_DESCRIPTIONS = {
    "400": "The request is invalid; the message and fields say what to change.",
    "401": "No credentials, or they were not accepted.",
    "403": "Your role in this project does not allow this action.",
    "404": "Not found, or you are not a member of its project.",
    "409": "The object is not in a state that allows this (stale revision, locked, not ready).",
    "415": "The request body's media type is not accepted here.",
    "416": "The requested range is outside the file.",
    "422": "The stored image has no frame that can be drawn.",
    "429": "Too many requests; wait and try again.",
    "500": "The server failed on this request; it was logged.",
}

# Errors particular to one operation, by operationId.
_EXTRA: dict[str, tuple[str, ...]] = {
    "api_instances_render.png_retrieve": ("422",),
    "api_quarantine_preview.png_retrieve": ("409",),
    "api_exports_download_retrieve": ("409", "416"),
}

_UNSAFE = {"post", "put", "patch", "delete"}


def _codes(method: str, operation: dict[str, Any]) -> list[str]:
    codes = ["400", "500"]
    if {} not in operation.get("security", [{}]):  # {} in the list means anonymous is allowed
        codes += ["401", "403", "404", "429"]
    if "requestBody" in operation:
        codes.append("415")
    if method in _UNSAFE:
        codes.append("409")
    codes += _EXTRA.get(operation.get("operationId", ""), ())
    return codes


# workbench.middleware refuses control characters in the path and query: say so in the schema.
NO_CONTROL_CHARACTERS = "^[^\\x00-\\x1f\\x7f]*$"


def _forbid_control_characters(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        schema = parameter.get("schema", {})
        if parameter.get("in") in {"path", "query"} and schema.get("type") == "string":
            if not ({"enum", "format", "pattern"} & set(schema)):
                schema["pattern"] = NO_CONTROL_CHARACTERS


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: declare each operation's error responses (see module doc)."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            if method not in {"get", "put", "post", "patch", "delete", "head", "options"}:
                continue
            _forbid_control_characters(operation)
            responses = operation.setdefault("responses", {})
            for code in _codes(method, operation):
                responses.setdefault(code, {"description": _DESCRIPTIONS[code], "content": error})
    return result
