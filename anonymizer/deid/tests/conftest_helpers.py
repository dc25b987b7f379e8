"""Shared helpers for the deid tests (kept out of conftest.py so that a project-wide
conftest can appear without changing these tests)."""

from __future__ import annotations

from anonymizer.deid import DeidOptions, PseudonymKeys, deidentify
from anonymizer.deid.result import DeidResult

KEYS = PseudonymKeys(b"test-secret-0123456789abcdef")
OTHER_KEYS = PseudonymKeys(b"another-secret-0123456789abcd")


def run(ds, options: DeidOptions | None = None, **kwargs) -> DeidResult:
    return deidentify(ds, options=options or DeidOptions(), keys=KEYS, **kwargs)


def action_of(result: DeidResult, path: str) -> str:
    return next(a.action for a in result.attributes if a.path == path)
