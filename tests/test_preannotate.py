"""Pre-annotation: a tiny UNet trained here runs over stored CT through the command and the run API.

Cast (conftest.py): alice admin, bob radiologist, carol compliance, dave ML engineer,
erin reviewer in project A; charlie is an outsider (admin of project B).
"""

from __future__ import annotations

import io
import re
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command

from annotations import geometry as geo
from annotations import services
from annotations.models import Annotation
from inference.models import InferenceRun, ModelVersion, Proposal
from inference.services import model_version_register
from tests.annotation_factory import make_schema, make_series
from tests.helpers import store_ct

SIZE = 32
CONFIG = {"labels": ["Nodule"], "epochs": 5, "size": SIZE, "channels": [8, 16, 32], "learning_rate": 1e-2}


def _disk_image(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    cx, cy, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.12, 0.2)
    mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r**2
    image = np.full((SIZE, SIZE), -850.0, dtype=np.float32)
    image[mask] = 40.0
    return image + rng.normal(0, 20, image.shape).astype(np.float32), mask


@pytest.fixture(scope="module")
def trained_weights(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A tiny UNet that finds bright disks on air, trained once for the module (a few seconds)."""
    pytest.importorskip("torch")
    from inference.handlers import handler_class
    from inference.handlers.base import TrainConfig

    root = tmp_path_factory.mktemp("disks")
    for split, seeds in (("train", range(24)), ("validation", range(100, 108))):
        (root / "data" / split).mkdir(parents=True)
        for seed in seeds:
            image, mask = _disk_image(seed)
            np.savez(root / "data" / split / f"{seed:04d}.npz", image=image, label=mask.astype(np.uint8))
    result = handler_class("segmentation").train(root / "data", TrainConfig.from_dict(CONFIG), root / "work")
    return bytes(result.weights)


def _stored_series(project: Any, seed: int, instances: int = 3) -> Any:
    series = make_series(project, instances=instances, rows=SIZE, columns=SIZE)
    for k, instance in enumerate(series.instances.order_by("number")):
        store_ct(instance, _disk_image(seed + k)[0])
    return series


@pytest.fixture
def world(cast: dict[str, Any], project_a: Any, trained_weights: bytes) -> dict[str, Any]:
    """Three stored CT series; bob has labelled the first by hand. A registered tiny model."""
    schema = make_schema(project_a)
    labelled, fresh, other = (_stored_series(project_a, seed) for seed in (200, 300, 400))
    (read,) = services.assignment_create(series=labelled, readers=[cast["bob"]], user=cast["alice"])
    first = labelled.instances.order_by("number").first()
    human, _ = services.annotation_create(
        assignment=read,
        user=cast["bob"],
        label=schema.labels.get(name="Nodule"),
        sop_instance_uid=first.sop_uid,
        geometry={"rows": SIZE, "columns": SIZE, "rle": [40, 5]},
    )
    model, _ = model_version_register(
        project=project_a,
        kind="segmentation",
        name="tiny disks",
        weights=trained_weights,
        config=CONFIG,
        labels=["Nodule"],
        input_spec={"modality": "CT", "dims": 2, "window": [-1000, 400], "size": SIZE},
    )
    return {"labelled": labelled, "fresh": fresh, "other": other, "human": human, "model": model, "read": read}


def test_preannotate_proposes_on_the_unlabelled_series_only(world: dict[str, Any]) -> None:
    before = list(Annotation.objects.values("id", "revision", "geometry", "source"))
    out = io.StringIO()
    call_command("preannotate", project="alpha", model=world["model"].pk[:12], stdout=out)
    match = re.fullmatch(r"(\d+) proposals on (\d+) series \(run ([0-9a-f-]+)\)\n", out.getvalue())
    assert match, out.getvalue()
    count, series, run_id = int(match[1]), int(match[2]), match[3]
    run = InferenceRun.objects.get(pk=run_id)
    assert series == 2 and set(run.series_ids) == {str(world["fresh"].pk), str(world["other"].pk)}
    assert run.status == "done" and run.slices_done == run.slices_total == 6 and run.device in ("cpu", "cuda")
    assert count == run.proposals_count == Proposal.objects.count() >= 4  # a disk on (nearly) every slice
    for proposal in Proposal.objects.all():
        assert proposal.kind == "mask" and proposal.label.name == "Nodule" and 0 < proposal.score <= 1
        assert geo.validate_geometry("mask", proposal.geometry) == proposal.geometry
    # Proposals are never annotations, and nothing a reader drew changed.
    assert list(Annotation.objects.values("id", "revision", "geometry", "source")) == before


def test_the_proposal_overlaps_the_disk(world: dict[str, Any]) -> None:
    call_command("preannotate", project="alpha", model=world["model"].pk, series=[str(world["fresh"].pk)])
    instance = world["fresh"].instances.order_by("number").first()
    proposal = Proposal.objects.filter(sop_instance_uid=instance.sop_uid).order_by("-score").first()
    assert proposal is not None
    mask = geo.rle_decode(proposal.geometry["rle"], SIZE, SIZE)
    assert (geo.dice(mask, _disk_image(300)[1]) or 0.0) > 0.5


def test_an_explicit_labelled_series_gets_proposals_beside_its_annotation(world: dict[str, Any], api_as: Any) -> None:
    call_command("preannotate", project="alpha", model=world["model"].pk, series=[str(world["labelled"].pk)])
    human = Annotation.objects.get()
    assert human.pk == world["human"].pk and human.revision == 1 and human.geometry["rle"] == [40, 5]
    listed = api_as("bob").get(f"/api/assignments/{world['read'].pk}/proposals/").json()
    assert listed["count"] == Proposal.objects.count() > 0
    assert {p["decision"] for p in listed["results"]} == {"pending"}


def test_preannotate_refuses_what_it_cannot_run(world: dict[str, Any]) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No single model version"):
        call_command("preannotate", project="alpha", model="nope")
    with pytest.raises(CommandError, match="series"):
        call_command("preannotate", project="alpha", model=world["model"].pk, series=["not-a-series"])


def test_the_run_api_queues_and_the_worker_runs(world: dict[str, Any], api_as: Any, run_tasks: Any) -> None:
    url = f"/api/projects/{world['model'].project_id}/inference-runs/"
    with run_tasks():
        response = api_as("dave").post(url, {"model": world["model"].pk, "series": [str(world["fresh"].pk)]})
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "queued" and response.json()["slices_total"] == 3
    detail = api_as("dave").get(f"/api/inference-runs/{response.json()['id']}/").json()
    assert detail["status"] == "done" and detail["slices_done"] == 3 and detail["proposals_count"] > 0
    listed = api_as("alice").get(url).json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == detail["id"]
    # The worker is idempotent: a redelivered task finds the run done and does nothing.
    from inference import runs

    assert runs.inference_run_execute(run_id=detail["id"]) is None
    assert Proposal.objects.count() == detail["proposals_count"]


def test_a_failed_run_says_why(world: dict[str, Any], run_tasks: Any) -> None:
    from inference import runs

    ModelVersion.objects.filter(pk=world["model"].pk).update(weights_sha256="1" * 64)
    run = runs.inference_run_create(
        project=world["model"].project, model=world["model"], series_ids=None, user=None, enqueue=False
    )
    with pytest.raises(RuntimeError):
        runs.inference_run_execute(run_id=str(run.pk))
    run.refresh_from_db()
    assert run.status == "failed" and "checksum" in run.error and not Proposal.objects.exists()


def test_a_run_left_running_by_a_lost_worker_resumes_at_the_next_series(world: dict[str, Any]) -> None:
    from inference import runs

    run = runs.inference_run_create(
        project=world["model"].project, model=world["model"], series_ids=None, user=None, enqueue=False
    )
    fresh, other = world["fresh"], world["other"]
    assert run.series_ids == [str(fresh.pk), str(other.pk)]
    # What the lost worker had committed: the first series' proposals and counts, then it died.
    first = fresh.instances.order_by("number").first()
    label = world["human"].label
    Proposal.objects.create(
        run=run,
        model=run.model,
        series=fresh,
        label=label,
        sop_instance_uid=first.sop_uid,
        kind="mask",
        geometry={"rows": SIZE, "columns": SIZE, "rle": [0, 4]},
        score=0.5,
    )
    InferenceRun.objects.filter(pk=run.pk).update(status="running", slices_done=3, proposals_count=1)
    done = runs.inference_run_execute(run_id=str(run.pk))
    assert done is not None and done.status == "done" and done.slices_done == done.slices_total == 6
    assert Proposal.objects.filter(series=fresh).count() == 1  # not run again
    assert Proposal.objects.filter(series=other).count() == done.proposals_count - 1 > 0
