"""Property-based tests of the API against its committed schema (docs/openapi.yaml), with schemathesis.

Every operation gets a bounded number of generated requests, valid and invalid, sent in process
to the WSGI app as a project admin with a token. The checks: no 5xx, every status code and body as
documented, invalid input refused (negative_data_rejection) and valid input accepted where the
schema says it is (positive_data_acceptance). Path parameters are pinned to real objects so that
requests reach the views' logic, not only their 404.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode

from annotations import services as annotation_services
from annotations.models import AssignmentStatus
from anonymizer.models import IngestItem
from anonymizer.vocabulary import vocabulary_term_add
from datasets import services as dataset_services
from inference.models import InferenceRun, ModelVersion, Proposal
from tests.annotation_factory import make_schema
from tests.helpers import CT_SMALL, ingest
from workbench.models import Instance

SCHEMA = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"
# 20 a mode per operation keeps the run near two minutes; raise it to dig deeper locally.
MAX_EXAMPLES = int(os.environ.get("WORKBENCH_SCHEMATHESIS_EXAMPLES", "20"))

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def _labels() -> list[str]:
    """The operations of the committed schema, e.g. ``GET /api/projects/{project_id}/``."""
    loaded = schemathesis.openapi.from_path(SCHEMA)
    return sorted(result.ok().label for result in loaded.get_all_operations())


@pytest.fixture
def api_schema(project_a: Any, cast: Any, run_tasks: Any) -> Any:
    alice = cast["alice"]
    with run_tasks():
        batch = ingest(project_a, {"ct.dcm": CT_SMALL.read_bytes()}, user=alice)
    instance = Instance.objects.select_related("series__study").get()
    series = instance.series
    label = make_schema(project_a).labels.get(name="Lesion")
    (assignment,) = annotation_services.assignment_create(series=series, readers=[cast["bob"]], user=alice)
    annotation, _ = annotation_services.annotation_create(
        assignment=assignment,
        user=cast["bob"],
        label=label,
        sop_instance_uid=instance.sop_uid,
        geometry={"x0": 1.0, "y0": 1.0, "x1": 3.0, "y1": 2.0},
    )
    dataset = dataset_services.dataset_create(
        project=project_a, user=cast["dave"], name="all", selection={"statuses": list(AssignmentStatus.values)}
    )
    version, _ = dataset_services.version_freeze(dataset=dataset, user=cast["dave"])
    export, _ = dataset_services.export_request(
        version=version, user=cast["dave"], export_format="dicom"
    )  # never built
    vocabulary_term_add(project=project_a, user=cast["carol"], term="thorax")
    model = ModelVersion.objects.create(
        id="e" * 64,
        project=project_a,
        kind="segmentation",
        name="schema model",
        labels=["Lesion"],
        input_spec={"modality": series.modality},
        weights_path="unused",
        weights_sha256="0" * 64,
    )
    run = InferenceRun.objects.create(project=project_a, model=model, series_ids=[str(series.pk)], status="done")
    proposal = Proposal.objects.create(
        run=run,
        model=model,
        series=series,
        label=label,
        sop_instance_uid=instance.sop_uid,
        kind=label.kind,
        geometry={"x0": 2.0, "y0": 2.0, "x1": 4.0, "y1": 3.0},
        score=0.9,
    )
    token, _ = Token.objects.get_or_create(user=alice)
    config = SchemathesisConfig.from_dict(
        {
            "seed": 20261203,
            "headers": {"Authorization": f"Token {token.key}"},
            # The API refuses NUL in any string, JSON keys included (workbench.api.parsers), which a
            # body schema with free-form objects cannot say: valid requests are generated without it.
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "allow-x00": False},
            "parameters": {
                "project_id": str(project_a.pk),
                "study_id": str(series.study_id),
                "series_id": str(series.pk),
                "instance_id": str(instance.pk),
                "batch_id": str(batch.pk),
                "item_id": str(IngestItem.objects.get().pk),
                "assignment_id": str(assignment.pk),
                "annotation_id": str(annotation.pk),
                "dataset_id": str(dataset.pk),
                "version_id": str(version.pk),
                "export_id": str(export.pk),
                "term": "thorax",
                "run_id": str(run.pk),
                "proposal_id": str(proposal.pk),
                "objectUID": instance.sop_uid,
            },
        }
    )
    schema = schemathesis.openapi.from_path(SCHEMA, config=config)
    schema.app = get_wsgi_application()
    return schema


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("label", _labels())
def test_api_conforms_to_its_schema(api_schema: Any, label: str, mode: GenerationMode) -> None:
    operation = api_schema.find_operation_by_label(label)

    # schemathesis' own pytest integration (from_fixture) does not run under pytest 9 yet, so the
    # operation's strategy runs under hypothesis directly: bounded, derandomized, no shrinking.
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        case.call_and_validate()

    try:
        run()
    except Unsatisfiable:
        # Only pinned path parameters and no body: nothing about the request can be made invalid.
        assert mode is GenerationMode.NEGATIVE
        pytest.skip("no invalid request can be generated for this operation")
