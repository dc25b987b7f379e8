"""Imported models: a TorchScript file and MONAI Bundle zips are checked, registered and run."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np
import pytest

from inference.handlers import handler_class, handler_name
from inference.handlers.artifacts import InvalidArtifact, inspect_artifact

torch = pytest.importorskip("torch")

WINDOW = (-1000.0, 400.0)


class Bright(torch.nn.Module):
    """Background and foreground logits: foreground where the windowed image is above 0.5."""

    def forward(self, x: Any) -> Any:
        foreground = (x - 0.5) * 20.0
        return torch.cat([-foreground, foreground], dim=1)


def torchscript_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.trace(Bright(), torch.zeros(1, 1, 32, 32)), buffer)
    return buffer.getvalue()


def trainable_torchscript_bytes() -> bytes:
    """A scripted 1x1 convolution: TorchScript with parameters, which fine-tuning can train."""
    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.Conv2d(1, 2, 1)), buffer)
    return buffer.getvalue()


def bundle_bytes(*, model: str = "ts", inference_format: str = "json", top: str = "lesion_bundle/") -> bytes:
    metadata = {
        "version": "0.1.0",
        "task": "Lesion segmentation on chest CT slices",
        "description": "A test bundle: bright pixels are lesion.",
        "network_data_format": {
            "inputs": {"image": {"type": "image", "modality": "CT", "num_channels": 1, "spatial_shape": [32, 32]}},
            "outputs": {"pred": {"num_channels": 2, "channel_def": {"0": "background", "1": "Nodule"}}},
        },
    }
    preprocessing = {
        "_target_": "Compose",
        "transforms": [{"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": -1000, "a_max": 400}],
    }
    inference: dict[str, Any] = {"preprocessing": preprocessing}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(top + "configs/metadata.json", json.dumps(metadata))
        if model == "ts":
            archive.writestr(top + "models/model.ts", torchscript_bytes())
        else:
            from monai.networks.nets import UNet

            arguments = {"spatial_dims": 2, "in_channels": 1, "out_channels": 2, "channels": [4, 8], "strides": [2]}
            inference["network_def"] = {"_target_": "UNet", **arguments}
            weights = io.BytesIO()
            torch.save(UNet(**arguments).state_dict(), weights)
            archive.writestr(top + "models/model.pt", weights.getvalue())
        if inference_format == "json":
            archive.writestr(top + "configs/inference.json", json.dumps(inference))
        else:
            import yaml

            archive.writestr(top + "configs/inference.yaml", yaml.safe_dump(inference))
    return buffer.getvalue()


def slice_with_disc(size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size]
    disc = (xx - 20) ** 2 + (yy - 26) ** 2 <= 36
    image = np.full((size, size), -850.0, dtype=np.float32)
    image[disc] = 40.0
    return image, disc


def run(data: bytes, **form: Any) -> list[Any]:
    artifact = inspect_artifact(data, **form)
    handler = handler_class(handler_name("segmentation", artifact.config))(data, artifact.config)
    image, _ = slice_with_disc()
    (objects,) = handler.predict([image])
    return objects


def test_a_torchscript_model_runs_on_a_slice() -> None:
    artifact = inspect_artifact(torchscript_bytes(), labels=["Nodule"], window=WINDOW)
    assert artifact.format == "torchscript" and artifact.labels == ["Nodule"]
    assert artifact.input_spec["window"] == list(WINDOW)
    (found,) = run(torchscript_bytes(), labels=["Nodule"], window=WINDOW)
    _, disc = slice_with_disc()
    assert found.label == "Nodule" and np.array_equal(found.mask, disc) and found.score > 0.9


@pytest.mark.parametrize("inference_format", ["json", "yaml"])
def test_a_torchscript_bundle_takes_labels_window_and_size_from_its_configs(inference_format: str) -> None:
    data = bundle_bytes(inference_format=inference_format)
    artifact = inspect_artifact(data)
    assert artifact.format == "monai_bundle" and artifact.labels == ["Nodule"]
    assert artifact.input_spec == {"modality": "CT", "dims": 2, "spacing": None, "window": list(WINDOW), "size": 32}
    assert artifact.metadata["task"].startswith("Lesion")
    (found,) = run(data)
    assert found.label == "Nodule" and found.mask.shape == (48, 48) and found.mask[26, 20]


def test_a_state_dict_bundle_is_rebuilt_from_its_network_def() -> None:
    data = bundle_bytes(model="pt", top="")
    artifact = inspect_artifact(data)
    assert artifact.config["network_def"]["_target_"] == "UNet"
    objects = run(data)  # untrained weights: whatever it finds, it finds in the right shape
    assert all(o.label == "Nodule" and o.mask.shape == (48, 48) for o in objects)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"not a zip at all", "not a zip archive"),
        (zipfile.ZipFile.__name__.encode(), "not a zip archive"),
    ],
)
def test_what_is_not_a_model_is_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(InvalidArtifact, match=message):
        inspect_artifact(data)


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_broken_bundles_say_what_is_missing() -> None:
    meta = json.dumps({"network_data_format": {"outputs": {"pred": {"channel_def": {"1": "Nodule"}}}}}).encode()
    with pytest.raises(InvalidArtifact, match="configs/metadata.json"):
        inspect_artifact(_zip({"readme.txt": b"hello"}))
    with pytest.raises(InvalidArtifact, match="not valid JSON"):
        inspect_artifact(_zip({"configs/metadata.json": b"{oops", "configs/inference.json": b"{}"}))
    with pytest.raises(InvalidArtifact, match="inference.json"):
        inspect_artifact(_zip({"configs/metadata.json": meta}))
    with pytest.raises(InvalidArtifact, match="models/model.ts"):
        inspect_artifact(_zip({"configs/metadata.json": meta, "configs/inference.json": b"{}"}))
    evil = json.dumps({"network_def": {"_target_": "os.system", "command": "true"}}).encode()
    with pytest.raises(InvalidArtifact, match="not one of the MONAI networks"):
        inspect_artifact(_zip({"configs/metadata.json": meta, "configs/inference.json": evil, "models/model.pt": b"x"}))
    with pytest.raises(InvalidArtifact, match="give its labels"):
        inspect_artifact(torchscript_bytes())


def test_whether_an_import_can_be_fine_tuned_is_read_from_its_archive() -> None:
    """TorchScript lists each module's parameters in its code; torch.jit.freeze empties the lists."""
    from monai.networks.nets import UNet

    network = UNet(spatial_dims=2, in_channels=1, out_channels=2, channels=(4, 8), strides=(2,), num_res_units=0)
    scripted = torch.jit.script(network.eval())
    saved = {}
    for name, module in (("scripted", scripted), ("frozen", torch.jit.freeze(scripted))):
        buffer = io.BytesIO()
        torch.jit.save(module, buffer)
        saved[name] = buffer.getvalue()
    assert inspect_artifact(saved["scripted"], labels=["Nodule"]).config["trainable"] is True
    assert inspect_artifact(saved["frozen"], labels=["Nodule"]).config["trainable"] is False
    assert inspect_artifact(torchscript_bytes(), labels=["Nodule"]).config["trainable"] is False  # no parameters
    assert inspect_artifact(bundle_bytes()).config["trainable"] is False  # Bright, inside models/model.ts
    assert inspect_artifact(bundle_bytes(model="pt")).config["trainable"] is True  # a MONAI network rebuilt
    meta = json.dumps({"network_data_format": {"outputs": {"pred": {"channel_def": {"1": "Nodule"}}}}}).encode()
    with pytest.raises(InvalidArtifact, match="models/model.ts is not a TorchScript model"):
        inspect_artifact(
            _zip({"configs/metadata.json": meta, "configs/inference.json": b"{}", "models/model.ts": b"?"})
        )
