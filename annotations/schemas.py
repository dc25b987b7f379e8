"""Label schema services: each change is a new version; old versions and their labels stay."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.db.models import Max

from annotations import geometry as geo
from annotations.models import Label, LabelSchema
from workbench.audit import audit_record
from workbench.models import Project

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_ATTRIBUTE_TYPES = ("boolean", "choice", "number", "text")


class InvalidSchema(ValueError):
    """The label list is not a valid schema; the message says why."""


def _clean_attribute(label_name: str, spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"].strip():
        raise InvalidSchema(f"Label '{label_name}': each attribute needs a name.")
    if spec.get("type") not in _ATTRIBUTE_TYPES:
        raise InvalidSchema(f"Label '{label_name}': attribute type must be one of {', '.join(_ATTRIBUTE_TYPES)}.")
    choices = spec.get("choices") or []
    if spec["type"] == "choice" and (not isinstance(choices, list) or not choices):
        raise InvalidSchema(f"Label '{label_name}': a choice attribute needs a list of choices.")
    return {"name": spec["name"].strip(), "type": spec["type"], "choices": list(choices)}


def _clean_labels(labels: Any) -> list[dict[str, Any]]:
    if not isinstance(labels, list) or not labels:
        raise InvalidSchema("A schema needs at least one label.")
    seen: set[str] = set()
    out = []
    for item in labels:
        name = str(item.get("name", "")).strip() if isinstance(item, dict) else ""
        if not name or len(name) > 100:
            raise InvalidSchema("Each label needs a name of at most 100 characters.")
        if name in seen:
            raise InvalidSchema(f"Label names must be unique; '{name}' is repeated.")
        seen.add(name)
        if item.get("kind") not in geo.ALL_KINDS:
            raise InvalidSchema(f"Label '{name}': kind must be one of {', '.join(sorted(geo.ALL_KINDS))}.")
        if not _COLOR.match(str(item.get("color", ""))):
            raise InvalidSchema(f"Label '{name}': color must be #rrggbb.")
        attributes = [_clean_attribute(name, spec) for spec in item.get("attributes") or []]
        if len({a["name"] for a in attributes}) != len(attributes):
            raise InvalidSchema(f"Label '{name}': attribute names must be unique.")
        if item["kind"] in geo.CLASS_KINDS and not any(a["name"] == "value" for a in attributes):
            raise InvalidSchema(f"Label '{name}': a classification needs a 'value' attribute holding the class.")
        out.append({"name": name, "color": item["color"].lower(), "kind": item["kind"], "attributes": attributes})
    return out


def label_schema_create(*, project: Project, labels: Any, user: Any = None) -> LabelSchema:
    """Create the project's next schema version (previous + 1) with these labels.

    Transactional; concurrent calls get distinct versions (the project row is locked).
    Raises InvalidSchema. The caller has checked that ``user`` is a project admin. Audited.
    """
    clean = _clean_labels(labels)
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()
        last = LabelSchema.objects.filter(project=project).aggregate(v=Max("version"))["v"] or 0
        schema = LabelSchema.objects.create(project=project, version=last + 1, created_by=user)
        Label.objects.bulk_create([Label(schema=schema, order=i, **label) for i, label in enumerate(clean)])
        audit_record(
            action="label_schema_created",
            actor=user,
            project=project,
            object_type="label_schema",
            object_id=schema.pk,
            details={"version": schema.version, "labels": len(clean)},
        )
    return schema


DEFAULT_CHEST_LABELS: list[dict[str, Any]] = [
    {
        "name": "Lesion",
        "color": "#e6194b",
        "kind": "box",
        "attributes": [
            {"name": "suspicious", "type": "boolean"},
            {"name": "type", "type": "choice", "choices": ["solid", "part-solid", "ground-glass"]},
        ],
    },
    {"name": "Lung", "color": "#3cb44b", "kind": "polygon", "attributes": []},
    {
        "name": "Nodule",
        "color": "#4363d8",
        "kind": "mask",
        "attributes": [{"name": "confidence", "type": "number"}, {"name": "note", "type": "text"}],
    },
    {"name": "Landmark", "color": "#f58231", "kind": "point", "attributes": []},
    {"name": "Diameter", "color": "#ffe119", "kind": "line", "attributes": []},
    {"name": "Region", "color": "#42d4f4", "kind": "ellipse", "attributes": []},
    {"name": "Costophrenic angle", "color": "#f032e6", "kind": "angle", "attributes": []},
    {
        "name": "Image quality",
        "color": "#911eb4",
        "kind": "classification_image",
        "attributes": [{"name": "value", "type": "choice", "choices": ["good", "poor"]}],
    },
]


def label_schema_default(*, project: Project, user: Any = None) -> LabelSchema:
    """The project's current schema, or a default chest schema as version 1 when it has none. Idempotent."""
    current = LabelSchema.objects.filter(project=project).order_by("-version").first()
    if current is not None:
        return current
    return label_schema_create(project=project, labels=DEFAULT_CHEST_LABELS, user=user)
