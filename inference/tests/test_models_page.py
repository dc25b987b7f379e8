"""The Models page: cards and training charts for members, refreshed while a job runs; 404 to outsiders.

Admins and ML engineers import, train and cancel there (through the API's services); other members
see no forms and get 403, outsiders 404; every refusal of the services is said in words.
"""

from __future__ import annotations

import html
import io
import re
import zipfile
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from datasets.models import Dataset, DatasetVersion
from inference.chart import training_chart
from inference.models import JobStatus, ModelVersion, TrainingJob
from inference.services import model_version_register

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def world(project_a: Any, cast: Any) -> dict[str, Any]:
    model, _ = model_version_register(
        project=project_a,
        kind="segmentation",
        name="lesion unet",
        weights=b"weights",
        config={"labels": ["Nodule"]},
        labels=["Nodule"],
        input_spec={"modality": "CT", "dims": 2, "window": [-1000, 400], "size": 128},
        metrics={"validation_dice": 0.91},
        seed=0,
    )
    job = TrainingJob.objects.create(
        project=project_a,
        dataset_version="ab" * 32,
        config={"labels": ["Nodule"], "epochs": 4},
        status=JobStatus.RUNNING,
        progress=[{"epoch": 1, "loss": 0.9, "dice": 0.1}, {"epoch": 2, "loss": 0.5, "dice": 0.6}],
    )
    return {"model": model, "job": job, "project": project_a}


def test_a_member_sees_cards_and_a_chart_that_refreshes_while_running(world: dict[str, Any], cast: Any) -> None:
    page = _client(cast["bob"]).get(f"/projects/{world['project'].pk}/models/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-nav="models"' in html and f'data-model="{world["model"].pk}"' in html
    assert "Nodule: Dice 0.910" in html and "Not for diagnosis" in html
    assert f'data-job="{world["job"].pk}" data-status="running"' in html and "2 / 4 epochs" in html
    assert len(re.findall(r'<polyline class="(loss|dice)" points="[\d., ]+"', html)) == 2
    assert 'http-equiv="refresh"' in html
    assert "manage.py model_train" not in html  # how to train is for admins and ML engineers
    assert (
        "manage.py model_train"
        in _client(cast["dave"]).get(f"/projects/{world['project'].pk}/models/").content.decode()
    )
    TrainingJob.objects.update(status=JobStatus.DONE)
    assert (
        'http-equiv="refresh"'
        not in _client(cast["bob"]).get(f"/projects/{world['project'].pk}/models/").content.decode()
    )


def test_the_page_needs_login_and_hides_other_projects(world: dict[str, Any], cast: Any) -> None:
    url = f"/projects/{world['project'].pk}/models/"
    assert Client().get(url).status_code == 302
    assert _client(cast["charlie"]).get(url).status_code == 404


def test_the_chart_scales_loss_to_its_maximum_and_dice_to_one() -> None:
    assert training_chart([], epochs=3) is None
    chart = training_chart([{"epoch": 1, "loss": 2.0, "dice": 0.0}, {"epoch": 3, "loss": 1.0, "dice": 1.0}], epochs=3)
    assert chart is not None and chart.loss_max == 2.0
    (x1, y1), (x3, y3) = (tuple(map(float, p.split(","))) for p in chart.loss_points.split())
    assert x1 == chart.left and x3 == chart.right and y1 == chart.top and y3 == (chart.top + chart.baseline) / 2
    assert chart.dice_points.split()[-1] == f"{float(chart.right)},{float(chart.top)}"


def test_the_chart_names_the_validation_metric_by_model_kind(world: dict[str, Any], cast: Any) -> None:
    progress = [
        {"epoch": 1, "loss": 0.7, "dice": 0.55, "auc": 0.55},
        {"epoch": 2, "loss": 0.4, "dice": 0.8, "auc": 0.8},
    ]
    TrainingJob.objects.create(
        project=world["project"],
        dataset_version="cd" * 32,
        kind="classification",
        config={"labels": ["Abnormal"], "epochs": 2},
        status=JobStatus.DONE,
        progress=progress,
    )
    html = _client(cast["bob"]).get(f"/projects/{world['project'].pk}/models/").content.decode()
    segmentation, classifier = (
        re.search(rf'data-job="{job.pk}".*?</tr>', html, flags=re.S).group(0)  # type: ignore[union-attr]
        for job in (world["job"], TrainingJob.objects.get(kind="classification"))
    )
    assert "AUC 0.800" in classifier and ">AUC 1</text>" in classifier and "validation AUC" in classifier
    assert "Dice" not in classifier
    assert "Dice 0.600" in segmentation and ">Dice 1</text>" in segmentation and "AUC" not in segmentation
    assert training_chart(progress, epochs=2, kind="classification").metric == "AUC"  # type: ignore[union-attr]
    assert training_chart(progress, epochs=2).metric == "Dice"  # type: ignore[union-attr]


# --- import, train and cancel from the page (admins and ML engineers) ----------------------------

TRAINERS = ["alice", "dave"]  # a project admin and an ML engineer
NON_TRAINERS = ["bob", "carol", "erin"]  # radiologist, compliance officer, reviewer


def torchscript_like(*, parameters: bool = True) -> bytes:
    """What torch.jit.save writes, as far as the import's check (without torch) looks: a zip
    with data.pkl and code/, whose module declares its parameters unless it was frozen. The page
    never loads the model; the worker's handler does."""
    buffer = io.BytesIO()
    declared = b'  __parameters__ = ["weight", ]\n' if parameters else b"  __parameters__ = []\n"
    code = b"class Bright(Module):\n" + declared
    members = {"data.pkl": b"\x80\x02}q\x00.", "code/__torch__.py": code, "version": b"3\n"}
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():  # a fixed date: the same bytes, the same model version
            archive.writestr(zipfile.ZipInfo(f"bright/{name}", date_time=(2026, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


def _upload(data: bytes, name: str = "bright.pt") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def _import(client: Client, project: Any, data: bytes, **form: Any) -> Any:
    return client.post(f"/projects/{project.pk}/models/import/", {"file": _upload(data), **form})


def _messages(response: Any) -> list[str]:
    """The messages the user reads: on the page itself, or on the one a redirect leads to."""
    if response.status_code == 302:
        response = response.client.get(response["Location"])
    listed = re.search(r'<ul class="messages">(.*?)</ul>', response.content.decode(), re.S)
    return [html.unescape(m) for m in re.findall(r"<li[^>]*>(.*?)</li>", listed.group(1))] if listed else []


@pytest.fixture
def version(project_a: Any, cast: Any, monkeypatch: pytest.MonkeyPatch) -> DatasetVersion:
    # A version row without a stored manifest: its mask labels are what the manifest would list.
    monkeypatch.setattr("inference.services._area_labels", lambda version: ["Nodule"])
    dataset = Dataset.objects.create(project=project_a, name="lesions", created_by=cast["dave"])
    return DatasetVersion.objects.create(
        id="cd" * 32,
        dataset=dataset,
        manifest_path="x",
        samples=6,
        instances=6,
        annotations=6,
        label_source="accepted",
        summary={"labels": [{"name": "Nodule", "kind": "mask"}, {"name": "Normal", "kind": "tag"}]},
    )


@pytest.mark.parametrize("name", TRAINERS)
def test_admins_and_ml_engineers_get_the_forms(world: dict[str, Any], cast: Any, name: str) -> None:
    html = _client(cast[name]).get(f"/projects/{world['project'].pk}/models/").content.decode()
    assert 'id="import"' in html and 'enctype="multipart/form-data"' in html and 'name="file"' in html
    assert 'id="train"' in html and "No frozen dataset version yet" in html  # nothing frozen in this world
    assert 'class="cancel-job"' in html  # the running job


@pytest.mark.parametrize("name", NON_TRAINERS)
def test_other_members_see_no_forms_and_no_cancel(world: dict[str, Any], cast: Any, name: str) -> None:
    html = _client(cast[name]).get(f"/projects/{world['project'].pk}/models/").content.decode()
    assert 'id="import"' not in html and 'id="train"' not in html and "cancel-job" not in html
    assert f'data-job="{world["job"].pk}"' in html  # they still follow the job


@pytest.mark.parametrize("name", TRAINERS)
def test_a_torchscript_file_is_imported_through_the_page(project_a: Any, cast: Any, name: str) -> None:
    client = _client(cast[name])
    form = {"name": "bright", "kind": "segmentation", "labels": "Nodule", "window": "-1000,400", "size": "32"}
    made = _import(client, project_a, torchscript_like(), **form, modality="CT")
    assert made.status_code == 302 and made["Location"] == f"/projects/{project_a.pk}/models/"
    model = ModelVersion.objects.get(project=project_a)
    assert _messages(made) == [f"Imported 'bright' as model version {model.pk[:12]}."]
    assert model.config["provenance"] == "imported" and model.labels == ["Nodule"] and model.created_by == cast[name]
    assert model.input_spec == {"modality": "CT", "dims": 2, "spacing": None, "window": [-1000.0, 400.0], "size": 32}
    page = client.get(made["Location"]).content.decode()
    assert f'data-model="{model.pk}"' in page and "imported · segmentation" in page
    again = _import(client, project_a, torchscript_like(), **form, modality="CT")
    assert again.status_code == 302 and ModelVersion.objects.count() == 1  # content-addressed
    assert _messages(again) == [f"This model is already here as version {model.pk[:12]} ('bright')."]


def test_a_bundle_names_its_own_labels_and_input(project_a: Any, cast: Any) -> None:
    pytest.importorskip("torch")
    from inference.tests.test_model_import import bundle_bytes

    made = _import(_client(cast["alice"]), project_a, bundle_bytes(), name="bundle", kind="segmentation")
    assert made.status_code == 302, _messages(made)
    model = ModelVersion.objects.get()
    assert model.labels == ["Nodule"] and model.input_spec["modality"] == "CT"


def test_import_errors_are_said_in_words_and_nothing_is_stored(project_a: Any, cast: Any) -> None:
    client = _client(cast["dave"])
    bad = _import(client, project_a, b"just text", name="bad", kind="segmentation")
    assert bad.status_code == 200
    (said,) = _messages(bad)
    assert said.startswith("Model file: The file is neither a TorchScript model") and "not a zip archive" in said
    page = bad.content.decode()
    assert 'aria-invalid="true"' in page and 'value="bad"' in page  # the field is marked, what was typed kept
    no_labels = _import(client, project_a, torchscript_like(), name="ts", kind="segmentation")
    assert _messages(no_labels) == [
        "Model file: A TorchScript model does not name its outputs: give its labels, in channel order."
    ]
    parsed = _import(client, project_a, torchscript_like(), name="ts", kind="segmentation", labels=" , ", window="4,1")
    assert _messages(parsed) == [
        "Labels: Give at least one label name.",
        "Intensity window: The window's high must be above its low.",
    ]
    small = _import(client, project_a, torchscript_like(), name="ts", kind="segmentation", labels="N", size="4")
    assert _messages(small) == ["Input size: Ensure this value is greater than or equal to 8."]
    detector = _import(client, project_a, torchscript_like(), name="ts", kind="detection", labels="N")
    assert _messages(detector) == ["Kind: Only segmentation models can be imported so far."]
    nothing = client.post(f"/projects/{project_a.pk}/models/import/", {"name": "x", "kind": "segmentation"})
    assert _messages(nothing) == ["Model file: Choose a TorchScript .pt file or a MONAI Bundle .zip to import."]
    assert not ModelVersion.objects.exists()


def test_the_import_checks_csrf_after_keeping_the_file(project_a: Any, cast: Any) -> None:
    """The view sets the model's upload handler before the CSRF check reads the multipart body."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast["dave"])
    url = f"/projects/{project_a.pk}/models/import/"
    form = {"name": "ts", "kind": "segmentation", "labels": "Nodule"}
    assert client.post(url, {"file": _upload(torchscript_like()), **form}).status_code == 403
    page = client.get(f"/projects/{project_a.pk}/models/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    made = client.post(url, {"file": _upload(torchscript_like()), **form, "csrfmiddlewaretoken": token.group(1)})
    assert made.status_code == 302 and ModelVersion.objects.count() == 1


@pytest.mark.parametrize("name", TRAINERS)
def test_a_training_job_is_queued_from_the_page(
    world: dict[str, Any], version: DatasetVersion, cast: Any, name: str
) -> None:
    client, project = _client(cast[name]), world["project"]
    page = client.get(f"/projects/{project.pk}/models/").content.decode()
    assert f'<option value="{version.pk}">lesions · {version.pk[:12]} · 6 series' in page
    assert 'name="labels" value="Nodule"' in page and 'value="Normal"' not in page  # a tag is no mask
    made = client.post(
        f"/projects/{project.pk}/models/train/",
        {"dataset_version": version.pk, "kind": "segmentation", "labels": ["Nodule"], "epochs": "3"},
    )
    assert made.status_code == 302, _messages(made)
    assert _messages(made) == ["Training job queued: 3 epochs of Nodule."]
    job = TrainingJob.objects.exclude(pk=world["job"].pk).get()
    assert job.dataset_version == version.pk and job.config["labels"] == ["Nodule"] and job.created_by == cast[name]
    shown = client.get(made["Location"]).content.decode()
    assert f'data-job="{job.pk}" data-status="queued"' in shown and "0 / 3 epochs" in shown
    assert f'action="/training-jobs/{job.pk}/cancel/"' in shown


def test_fine_tuning_from_the_page_starts_from_the_parent(
    world: dict[str, Any], version: DatasetVersion, cast: Any
) -> None:
    project, parent = world["project"], world["model"]
    made = _client(cast["dave"]).post(
        f"/projects/{project.pk}/models/train/",
        {"dataset_version": version.pk, "kind": "segmentation", "epochs": "2", "parent": parent.pk},
    )
    assert made.status_code == 302, _messages(made)
    job = TrainingJob.objects.get(parent=parent)
    assert job.config["labels"] == ["Nodule"]  # the parent's
    _import(_client(cast["dave"]), project, torchscript_like(), name="ts", kind="segmentation", labels="Nodule")
    imported = ModelVersion.objects.exclude(pk=parent.pk).get()
    refused = _client(cast["dave"]).post(
        f"/projects/{project.pk}/models/train/",
        {"dataset_version": version.pk, "kind": "segmentation", "epochs": "2", "parent": imported.pk},
    )
    assert _messages(refused) == [
        "Fine-tune from: The imported parent declares no input size, and fine-tuning trains on slices resized to "
        "one size; import it again with its input size."
    ]


def test_fine_tuning_a_frozen_import_is_refused_at_once_on_the_page_and_in_the_api(
    world: dict[str, Any], version: DatasetVersion, cast: Any, api_as: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """Whether an import can learn is read from its archive when it is imported (no torch in the
    web process), so the request is refused before a job is queued, not by the worker later."""
    project = world["project"]
    for name, parameters in (("frozen", False), ("scripted", True)):
        made = _import(
            _client(cast["dave"]),
            project,
            torchscript_like(parameters=parameters),
            name=name,
            kind="segmentation",
            labels="Nodule",
            size="32",
        )
        assert made.status_code == 302, _messages(made)
    frozen, scripted = (ModelVersion.objects.get(project=project, name=n) for n in ("frozen", "scripted"))
    assert frozen.config["trainable"] is False and scripted.config["trainable"] is True
    jobs = TrainingJob.objects.count()
    refused = _client(cast["dave"]).post(
        f"/projects/{project.pk}/models/train/",
        {"dataset_version": version.pk, "kind": "segmentation", "epochs": "2", "parent": frozen.pk},
    )
    assert refused.status_code == 200 and _messages(refused) == [
        "Fine-tune from: The imported model has no trainable parameters (a frozen TorchScript module keeps its "
        "weights as constants); export it without torch.jit.freeze to fine-tune it."
    ]
    url = f"/api/projects/{project.pk}/training-jobs/"
    body = {"dataset_version": version.pk, "kind": "segmentation", "epochs": 1, "parent": frozen.pk}
    with django_capture_on_commit_callbacks() as queued:
        response = api_as("dave").post(url, body, format="json")
    assert response.status_code == 400 and response["Content-Type"] == "application/json", response.content
    answer = response.json()
    assert answer["error"] == "invalid" and set(answer["fields"]) == {"parent"}
    assert "torch.jit.freeze" in answer["message"] and queued == [] and TrainingJob.objects.count() == jobs
    # The control: the same request with the import that declares parameters is queued.
    with django_capture_on_commit_callbacks() as queued:
        accepted = api_as("dave").post(url, {**body, "parent": scripted.pk}, format="json")
    assert accepted.status_code == 201, accepted.content
    assert len(queued) == 1 and TrainingJob.objects.filter(parent=scripted).count() == 1


def test_training_errors_are_said_in_words(
    world: dict[str, Any], version: DatasetVersion, cast: Any, project_b: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, project = _client(cast["alice"]), world["project"]
    url = f"/projects/{project.pk}/models/train/"
    jobs = TrainingJob.objects.count()
    none = client.post(url, {"kind": "segmentation", "epochs": "3"})
    assert none.status_code == 200 and _messages(none) == [
        "Dataset version: Choose a frozen dataset version to train on; freeze one on the Datasets page first."
    ]
    assert 'http-equiv="refresh"' not in none.content.decode()  # the running job must not wipe the form
    other = Dataset.objects.create(project=project_b, name="theirs")
    theirs = DatasetVersion.objects.create(
        id="ef" * 32, dataset=other, manifest_path="x", samples=1, instances=1, annotations=1, label_source="accepted"
    )
    assert _messages(client.post(url, {"dataset_version": theirs.pk, "kind": "segmentation", "epochs": "3"})) == [
        "Dataset version: No frozen dataset version with this id in this project."
    ]
    detector = client.post(url, {"dataset_version": version.pk, "kind": "detection", "epochs": "3"})
    assert _messages(detector) == ["Kind: Only segmentation and classification models are trained in the app."]
    too_long = client.post(url, {"dataset_version": version.pk, "kind": "segmentation", "epochs": "5000"})
    assert _messages(too_long) == ["Epochs: Ensure this value is less than or equal to 500."]
    monkeypatch.setattr("inference.services._area_labels", lambda version: ["Liver"])  # the manifest decides
    chosen = {"dataset_version": version.pk, "kind": "segmentation", "labels": ["Nodule"], "epochs": 3}
    unknown = client.post(url, chosen)
    assert _messages(unknown) == ["Labels: The version has no mask or area label 'Nodule'; it has Liver."]
    assert TrainingJob.objects.count() == jobs


def test_cancel_from_the_page(world: dict[str, Any], cast: Any) -> None:
    running = world["job"]
    queued = TrainingJob.objects.create(project=world["project"], dataset_version="ab" * 32, config={"epochs": 2})
    client = _client(cast["dave"])
    done = client.post(f"/training-jobs/{queued.pk}/cancel/")
    assert done.status_code == 302 and done["Location"] == f"/projects/{world['project'].pk}/models/"
    assert _messages(done) == ["Training job cancelled."]
    assert TrainingJob.objects.get(pk=queued.pk).status == JobStatus.CANCELLED
    asked = client.post(f"/training-jobs/{running.pk}/cancel/")
    assert _messages(asked) == ["The training job stops after its current epoch."]
    running.refresh_from_db()
    assert running.status == JobStatus.RUNNING and running.cancel_requested
    html = client.get(f"/projects/{world['project'].pk}/models/").content.decode()
    assert "(cancelling)" in html and "cancel-job" not in html  # asked once: no button left
    again = client.post(f"/training-jobs/{queued.pk}/cancel/")
    assert _messages(again) == ["The training job had already ended (cancelled)."]


def test_the_forms_posts_need_the_role_login_and_membership(
    world: dict[str, Any], version: DatasetVersion, cast: Any
) -> None:
    project, job = world["project"], world["job"]
    posts = [
        (f"/projects/{project.pk}/models/import/", {"file": _upload(torchscript_like()), "name": "x", "labels": "N"}),
        (f"/projects/{project.pk}/models/train/", {"dataset_version": version.pk, "kind": "segmentation", "epochs": 1}),
        (f"/training-jobs/{job.pk}/cancel/", {}),
    ]
    for url, body in posts:
        for name in NON_TRAINERS:
            assert _client(cast[name]).post(url, body).status_code == 403, (url, name)
        assert _client(cast["charlie"]).post(url, body).status_code == 404, url
        anonymous = Client().post(url, body)
        assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/"), url
        assert _client(cast["dave"]).get(url).status_code == 405, url
    assert not ModelVersion.objects.exclude(pk=world["model"].pk).exists()
    assert TrainingJob.objects.count() == 1 and not TrainingJob.objects.get().cancel_requested
