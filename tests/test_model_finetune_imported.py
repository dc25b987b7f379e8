"""Imported models fine-tuned in the app (issue 11): a TorchScript file and a MONAI Bundle zip as parents."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from datasets.models import DatasetVersion
from inference import selectors
from inference.handlers import handler_name
from inference.models import JobStatus, ModelVersion
from inference.services import (
    InvalidTraining,
    model_version_import,
    model_weights,
    training_job_create,
    training_job_run,
)
from inference.tests.test_model_import import bundle_bytes, torchscript_bytes

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

SIZE = 32  # the demo's 64-pixel slices, resized to the imported models' input size
WINDOW = (-1000.0, 400.0)


def scripted_unet() -> bytes:
    """A small MONAI U-Net, scripted and saved as a TorchScript file would be by its author."""
    from monai.networks.nets import UNet

    torch.manual_seed(7)
    network = UNet(spatial_dims=2, in_channels=1, out_channels=2, channels=(4, 8), strides=(2,), num_res_units=1)
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(network), buffer)
    return buffer.getvalue()


def _frozen(scripted: bytes) -> bytes:
    """The same network after torch.jit.freeze: its weights become constants, nothing is left to train."""
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.freeze(torch.jit.load(io.BytesIO(scripted)).eval()), buffer)
    return buffer.getvalue()


@pytest.fixture
def demo() -> dict[str, Any]:
    call_command("seed_demo", stdout=io.StringIO(), slices=4, size=64, training_patients=4, model=False)
    version = DatasetVersion.objects.get()
    return {"project": version.dataset.project, "version": version}


def _import(project: Any, data: bytes, **form: Any) -> ModelVersion:
    model, _ = model_version_import(
        project=project, user=None, name="imported", kind="segmentation", data=data, **{"labels": ["Nodule"], **form}
    )
    return model


def _fine_tune(demo: dict[str, Any], parent: ModelVersion, **options: Any) -> ModelVersion:
    job = training_job_create(
        project=demo["project"], version=demo["version"], user=None, parent=parent, epochs=1, options=options
    )
    done = training_job_run(job_id=str(job.pk))
    assert done is not None and done.status == JobStatus.DONE and done.result is not None, done and done.error
    return done.result


def _parameters(module: Any) -> dict[str, Any]:
    return {name: value.detach().clone() for name, value in module.named_parameters()}


def _module(model: ModelVersion) -> Any:
    from inference.handlers.torchscript import load_module

    return load_module(model_weights(model), model.config, torch.device("cpu"))


def test_an_imported_torchscript_model_is_fine_tuned_from_its_weights_and_runs_as_torchscript(
    demo: dict[str, Any],
) -> None:
    parent = _import(demo["project"], scripted_unet(), window=WINDOW, size=SIZE)
    theirs = _parameters(_module(parent))

    # At learning rate 0 every parameter comes out as the imported parent's: training started from them.
    still = _fine_tune(demo, parent, learning_rate=0.0)
    assert still.parent == parent and still.kind == "segmentation" and still.labels == ["Nodule"]
    assert still.config["format"] == "torchscript" and handler_name(still.kind, still.config) == "torchscript"
    assert still.input_spec["size"] == SIZE and still.input_spec["window"] == list(WINDOW)
    assert zipfile.ZipFile(io.BytesIO(model_weights(still))).testzip() is None  # torch.jit.save's archive
    mine = _parameters(torch.jit.load(io.BytesIO(model_weights(still))))
    assert mine.keys() == theirs.keys() and len(mine) > 4
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    card = selectors.model_card(still)
    assert card["provenance"]["source"] == "fine-tuned" and card["provenance"]["parent"] == parent.pk
    assert card["provenance"]["imported_from"] == parent.pk and card["provenance"]["format"] == "torchscript"
    assert any("Fine-tuned from an imported model" in line for line in card["limits"])
    assert card["data"]["dataset_version"] == demo["version"].pk

    # At the usual learning rate the weights move, and the existing TorchScript handler runs the child.
    moved = _fine_tune(demo, parent)
    changed = _parameters(torch.jit.load(io.BytesIO(model_weights(moved))))
    assert any(not torch.equal(changed[k], theirs[k]) for k in changed)
    from inference.models import InferenceRun, RunStatus
    from workbench.models import Series

    series = Series.objects.filter(study__project=demo["project"], modality="CT").order_by("series_uid").first()
    assert series is not None
    call_command(
        "preannotate", project=demo["project"].slug, model=moved.pk, series=[str(series.pk)], stdout=io.StringIO()
    )
    run = InferenceRun.objects.get(model=moved)
    assert run.status == RunStatus.DONE and run.series_ids == [str(series.pk)], run.error

    # Its child is fine-tuned the same way, and still says which imported model it descends from.
    grandchild = _fine_tune(demo, moved, learning_rate=0.0)
    assert grandchild.parent == moved and grandchild.config["imported_from"] == parent.pk


def test_a_monai_bundle_with_a_network_def_is_fine_tuned_and_stays_a_bundle(demo: dict[str, Any]) -> None:
    parent = _import(demo["project"], bundle_bytes(model="pt"))
    assert parent.config["size"] == SIZE and parent.config["network_def"]["_target_"] == "UNet"
    theirs = _parameters(_module(parent))
    child = _fine_tune(demo, parent, learning_rate=0.0)
    assert child.config["format"] == "monai_bundle" and child.config["network_def"] == parent.config["network_def"]
    names = zipfile.ZipFile(io.BytesIO(model_weights(child))).namelist()
    assert names == zipfile.ZipFile(io.BytesIO(model_weights(parent))).namelist()  # metadata and configs kept
    mine = _parameters(_module(child))
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    moved = _parameters(_module(_fine_tune(demo, parent)))
    assert any(not torch.equal(moved[k], theirs[k]) for k in moved)


def test_a_monai_bundle_with_torchscript_inside_is_fine_tuned_and_stays_a_bundle(demo: dict[str, Any]) -> None:
    source, bundle = zipfile.ZipFile(io.BytesIO(bundle_bytes(model="ts"))), io.BytesIO()
    with zipfile.ZipFile(bundle, "w") as archive:  # the test bundle, with a network that has weights
        for info in source.infolist():
            archive.writestr(info, scripted_unet() if info.filename.endswith("models/model.ts") else source.read(info))
    parent = _import(demo["project"], bundle.getvalue())
    theirs = _parameters(_module(parent))
    child = _fine_tune(demo, parent, learning_rate=0.0)
    assert child.config["format"] == "monai_bundle" and handler_name(child.kind, child.config) == "torchscript"
    assert zipfile.ZipFile(io.BytesIO(model_weights(child))).namelist() == source.namelist()
    mine = _parameters(_module(child))
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)


def test_what_cannot_be_fine_tuned_is_refused_naming_the_field(demo: dict[str, Any]) -> None:
    project, version = demo["project"], demo["version"]
    parent = _import(project, scripted_unet(), window=WINDOW, size=SIZE)

    def refused(**kwargs: Any) -> InvalidTraining:
        with pytest.raises(InvalidTraining) as caught:
            training_job_create(project=project, version=version, user=None, enqueue=False, **kwargs)
        return caught.value

    wrong_kind = refused(parent=parent, kind="classification", labels=["Nodule"])
    assert wrong_kind.field == "parent" and "segmentation model" in str(wrong_kind)
    assert refused(parent=parent, labels=["Liver"]).field == "labels"  # not a label of the version
    two = _import(project, scripted_unet(), window=WINDOW, size=SIZE, labels=["Nodule", "Vessel"])
    too_many = refused(parent=two)  # the parent's labels are not the version's
    assert too_many.field == "labels" and "'Vessel'" in str(too_many)
    assert refused(parent=two, labels=["Nodule"]).field == "labels"  # two output labels, one to train
    no_size = refused(parent=_import(project, scripted_unet(), window=WINDOW))
    assert no_size.field == "parent" and "input size" in str(no_size)
    with pytest.raises(CommandError, match="parent: .*segmentation model"):
        call_command("model_train", project=project.slug, version=version.pk, kind="classification", parent=parent.pk)

    # A module without parameters cannot learn: read from its archive at import, refused at request time.
    fixed = _import(project, torchscript_bytes(), window=WINDOW, size=SIZE)
    assert fixed.config["trainable"] is False
    untrainable = refused(parent=fixed)
    assert untrainable.field == "parent" and "no trainable parameters" in str(untrainable)
    with pytest.raises(CommandError, match="parent: The imported model has no trainable parameters"):
        call_command("model_train", project=project.slug, version=version.pk, epochs=1, parent=fixed.pk)
    # One imported before the archive was read says so only when the worker loads it, in the shell too.
    ModelVersion.objects.filter(pk=fixed.pk).update(config={**fixed.config, "trainable": None})
    with pytest.raises(CommandError, match="parent: The imported model has no trainable parameters"):
        call_command("model_train", project=project.slug, version=version.pk, epochs=1, parent=fixed.pk)
    frozen = _import(project, _frozen(scripted_unet()), window=WINDOW, size=SIZE)
    assert frozen.config["trainable"] is False and refused(parent=frozen).field == "parent"
