"""make run's demo: users per role, de-identified studies, a label schema and a worklist."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from annotations.models import Assignment, LabelSchema
from workbench.models import Instance, Membership, Project


@pytest.mark.django_db
def test_seed_demo_is_complete_and_idempotent() -> None:
    out = io.StringIO()
    call_command("seed_demo", slices=2, stdout=out)
    call_command("seed_demo", slices=2, stdout=out)
    project = Project.objects.get(slug="demo")
    assert set(Membership.objects.filter(project=project).values_list("role", flat=True)) == {
        "admin",
        "radiologist",
        "reviewer",
        "compliance",
        "ml_engineer",
    }
    assert Instance.objects.filter(series__study__project=project).count() == 2 * 4 + 2 * 3
    assert Instance.objects.filter(series__modality="US", pixel_cleaned=True).count() == 6
    assert LabelSchema.objects.filter(project=project).count() == 1
    assert Assignment.objects.filter(project=project, reader__username="radiologist").count() == 7
    assert "password:" in out.getvalue() and "HARRIS" not in out.getvalue()
