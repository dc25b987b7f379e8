"""Small display filters for the frontend's templates."""

from __future__ import annotations

import json
from typing import Any

from django import template

register = template.Library()


@register.filter
def compact_json(value: Any, limit: int = 400) -> str:
    """Audit details as one line of JSON, cut at ``limit`` characters."""
    text = json.dumps(value, sort_keys=True, separators=(", ", ": "), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
