"""An ML engineer imports, trains and triages through the Models page in Chromium and sees the results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from inference.models import JobStatus, ModelVersion, TrainingJob
from tests.e2e.test_flows import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/shots-models")  # noqa: S108 - screenshots for a person to look at, never committed


def _shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    for width, height in ((1366, 768), (1920, 1080)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)


def test_ml_engineer_imports_a_torchscript_model_through_the_page(
    page: Page, live_server: Any, cast: dict[str, Any], project_a: Any, tmp_path: Path
) -> None:
    pytest.importorskip("torch")  # to write the model file; the web process itself never loads it
    from inference.tests.test_model_import import torchscript_bytes

    TrainingJob.objects.create(  # a finished job: its chart shows, and the page does not reload
        project=project_a,
        dataset_version="ab" * 32,
        config={"labels": ["Nodule"], "epochs": 3},
        status=JobStatus.DONE,
        progress=[{"epoch": e, "loss": 1.0 / e, "dice": 0.3 * e} for e in (1, 2, 3)],
    )
    model_file = tmp_path / "bright.pt"
    model_file.write_bytes(torchscript_bytes())
    not_a_model = tmp_path / "notes.zip"
    not_a_model.write_bytes(b"just text")
    base = live_server.url
    log_in(page, base, "dave")
    page.goto(f"{base}/projects/{project_a.pk}/")
    page.click("[data-nav=models]")
    form = page.locator("form#import")
    expect(page.locator("form#train .no-versions")).to_contain_text("No frozen dataset version yet")
    _shoot(page, "models-forms")

    form.locator("input[name=file]").set_input_files(str(not_a_model))
    form.locator("input[name=name]").fill("bright")
    form.locator("button[type=submit]").click()
    expect(page.locator(".messages li.error")).to_contain_text("Model file: The file is neither a TorchScript model")
    expect(form.locator("input[name=name]")).to_have_value("bright")
    _shoot(page, "models-import-error")

    form.locator("input[name=file]").set_input_files(str(model_file))
    form.locator("input[name=labels]").fill("Nodule")
    form.locator("summary").click()
    form.locator("input[name=modality]").fill("CT")
    form.locator("input[name=size]").fill("32")
    form.locator("input[name=window]").fill("-1000,400")
    form.locator("button[type=submit]").click()
    model = ModelVersion.objects.get(project=project_a)
    expect(page.locator(".messages li.success")).to_have_text(f"Imported 'bright' as model version {model.pk[:12]}.")
    card = page.locator(f".model-card[data-model='{model.pk}']")
    expect(card).to_contain_text("imported · segmentation")
    expect(card).to_contain_text("Nodule")
    expect(card).to_contain_text("torchscript")
    assert model.input_spec["window"] == [-1000.0, 400.0] and model.input_spec["size"] == 32
    _shoot(page, "models-imported")

    # Its fine-tuned child (as training_job_run registers it) says which imported model it came from.
    from inference.services import model_version_register

    child, _ = model_version_register(
        project=project_a,
        kind="segmentation",
        name="bright, fine-tuned",
        weights=b"trained",
        config={**model.config, "provenance": "fine-tuned", "imported_from": model.pk, "epochs": 2},
        labels=["Nodule"],
        input_spec=model.input_spec,
        metrics={"validation_dice": 0.5},
        dataset_version="ab" * 32,
        parent=model,
        seed=0,
    )
    page.reload()
    fine_tuned = page.locator(f".model-card[data-model='{child.pk}']")
    expect(fine_tuned).to_contain_text("fine-tuned · segmentation")
    expect(fine_tuned).to_contain_text(f"fine-tuned from the imported model {model.pk[:12]}")
    expect(fine_tuned).to_contain_text("Fine-tuned from an imported model")
    grandchild, _ = model_version_register(
        project=project_a,
        kind="segmentation",
        name="bright, fine-tuned twice",
        weights=b"trained again",
        config={**child.config, "epochs": 3},
        labels=["Nodule"],
        input_spec=model.input_spec,
        dataset_version="ab" * 32,
        parent=child,
        seed=0,
    )
    page.reload()
    expect(page.locator(f".model-card[data-model='{grandchild.pk}']")).to_contain_text(
        f"fine-tuned from {child.pk[:12]}, which descends from the imported model {model.pk[:12]}"
    )
    _shoot(page, "models-fine-tuned-imported")


def test_ml_engineer_queues_a_training_job_and_cancels_it(
    page: Page, live_server: Any, cast: dict[str, Any], project_a: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from unittest import mock

    from datasets.models import Dataset, DatasetVersion

    # A frozen version without a stored manifest: its mask labels are what the manifest would list.
    monkeypatch.setattr("inference.services._area_labels", lambda version: ["Nodule"])
    dataset = Dataset.objects.create(project=project_a, name="lesions", created_by=cast["dave"])
    version = DatasetVersion.objects.create(
        id="cd" * 32,
        dataset=dataset,
        manifest_path="x",
        samples=6,
        instances=6,
        annotations=6,
        label_source="accepted",
        summary={"labels": [{"name": "Nodule", "kind": "mask"}]},
    )
    base = live_server.url
    log_in(page, base, "dave")
    page.goto(f"{base}/projects/{project_a.pk}/models/")
    form = page.locator("form#train")
    expect(form.locator("select[name=dataset_version]")).to_have_value(version.pk)
    form.locator("input[name=labels][value=Nodule]").check()
    form.locator("input[name=epochs]").fill("2")
    with mock.patch("inference.tasks.training_job_run.delay"):  # no worker here: the job stays queued
        form.locator("button[type=submit]").click()
        expect(page.locator(".messages li.success")).to_have_text("Training job queued: 2 epochs of Nodule.")
    job = TrainingJob.objects.get()
    row = page.locator(f"tr[data-job='{job.pk}']")
    expect(row).to_have_attribute("data-status", "queued")
    expect(page.locator(".refresh-note")).to_be_visible()
    _shoot(page, "models-queued")
    page.on("dialog", lambda dialog: dialog.accept())
    row.locator("button:text('Cancel')").click()
    expect(page.locator(".messages li.success")).to_have_text("Training job cancelled.")
    expect(page.locator(f"tr[data-job='{job.pk}']")).to_have_attribute("data-status", "cancelled")


def test_ml_engineer_triages_series_with_a_classifier_and_sees_them_scored(
    page: Page, live_server: Any, cast: dict[str, Any], project_a: Any
) -> None:
    pytest.importorskip("torch")  # the worker's part, run here in the test; the page itself never loads it
    from unittest import mock

    from inference import tasks
    from inference.models import InferenceRun, RunStatus, SeriesScore, TriageRun
    from tests.annotation_factory import make_series
    from tests.test_active_learning import _store_pixels, _tiny_model
    from tests.test_triage import _classifier

    classifier = _classifier(project_a, name="chest triage")
    for seed in range(2):
        _store_pixels(make_series(project_a, tag=f"t{seed}"), seed)
    unet = _tiny_model(project_a)
    for status, done, error in ((RunStatus.DONE, 40, ""), (RunStatus.FAILED, 12, "RuntimeError: out of memory")):
        InferenceRun.objects.create(  # the runs table beside it (ended: the page does not reload for them)
            project=project_a,
            model=unet,
            series_ids=["a", "b"],
            status=status,
            slices_total=40,
            slices_done=done,
            proposals_count=done // 2,
            device="cuda",
            error=error,
        )
    base = live_server.url
    log_in(page, base, "dave")
    page.goto(f"{base}/projects/{project_a.pk}/models/")
    card = page.locator(f".model-card[data-model='{classifier.pk}']")
    expect(card.locator(".triage-scored")).to_have_text("No series scored yet")
    with mock.patch("inference.tasks.triage_run.delay") as delay:  # no worker here: we play it below
        card.locator("button:text('Triage series')").click()
        expect(page.locator(".messages li.success")).to_have_text(
            "Triage queued: 2 series to score with 'chest triage'; "
            "its scored count below grows as the inference worker scores them."
        )
    expect(card.locator(".triage-scored")).to_have_text("No series scored yet")
    expect(card.locator(".triage-run")).to_have_text("Triage queued: 2 series to score.")
    expect(page.locator(".refresh-note")).to_have_text(
        "This page refreshes every 5 s while a job or run is queued or running."
    )
    expect(page.locator("table.inference-runs tbody tr")).to_have_count(2)
    _shoot(page, "models-triage-queued")
    ((run_id,), _) = delay.call_args
    assert tasks.triage_run(run_id) == 2  # what the inference worker does with the message
    run = TriageRun.objects.get(pk=run_id)
    last = SeriesScore.objects.filter(model=classifier).latest("computed_at").computed_at
    page.reload()  # the page would also reload itself within 5 s: the triage was pending
    expect(card.locator(".triage-scored")).to_have_text(f"2 series scored, last {last:%Y-%m-%d %H:%M}")
    expect(card.locator(".triage-run")).to_have_text(
        f"Last triage done {run.finished_at:%Y-%m-%d %H:%M}: 2 of 2 series scored."
    )
    expect(page.locator(".refresh-note")).to_have_count(0)  # nothing pending: no reloading
    _shoot(page, "models-triage-scored")
