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


@register.filter
def reason_words(code: str) -> str:
    """An item's reason code as a sentence a compliance officer can act on ("" for none)."""
    from anonymizer.reasons import reason_text

    return reason_text(code) if code else ""
