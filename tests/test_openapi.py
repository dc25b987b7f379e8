"""docs/openapi.yaml is the generated schema of the API as it is: regenerate with `make openapi`."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection


@pytest.mark.skipif(
    connection.vendor != "sqlite",
    reason="integer bounds in the schema follow the database's ranges; compared on the embedded default",
)
def test_committed_schema_is_current() -> None:
    out = io.StringIO()
    call_command("spectacular", "--validate", stdout=out)
    committed = (Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml").read_text()
    assert out.getvalue() == committed, "The API changed: run `make openapi` and commit docs/openapi.yaml."
