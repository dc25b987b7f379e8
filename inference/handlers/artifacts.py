"""Imported model files, checked without torch: a TorchScript archive or a MONAI Bundle zip.

Pure (no Django, no torch): the web process calls :func:`inspect_artifact` on an upload to refuse
what no handler could run, with a message that says what is wrong, before anything is stored.
The worker later loads the same bytes with the ``torchscript`` handler (handlers.torchscript).

A MONAI Bundle (https://docs.monai.io/en/latest/mb_specification.html) is a folder, zipped with
or without its top folder: ``configs/metadata.json`` (``network_data_format`` describes the
input and the output channels), ``configs/inference.json`` or ``.yaml``, and the weights as
``models/model.ts`` (TorchScript) or ``models/model.pt`` (a state_dict for ``network_def``).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any

MAX_BYTES = 512 * 1024 * 1024
# A state_dict bundle is rebuilt from its ``network_def``: only these MONAI networks, with literal
# arguments, so that importing a bundle never runs code named by the upload.
NETWORKS = frozenset({"UNet", "BasicUNet", "DynUNet", "AttentionUnet", "SegResNet", "UNETR", "SwinUNETR"})
# TorchScript writes each module class's parameter names into its code file
# (``__parameters__ = ["weight", "bias", ]``); torch.jit.freeze folds them into constants and
# leaves every list empty. A model whose lists are all empty has nothing fine-tuning could train.
_DECLARES_PARAMETERS = re.compile(rb'__parameters__ = \[\s*"')
UNTRAINABLE = (
    "The imported model has no trainable parameters (a frozen TorchScript module keeps its weights as "
    "constants); export it without torch.jit.freeze to fine-tune it."
)


class InvalidArtifact(ValueError):
    """The upload is not a model a handler can run; the message says what to fix."""


@dataclass(frozen=True)
class Artifact:
    """What an upload declares: its format, output labels, input spec and the handler's config."""

    format: str  # "torchscript" | "monai_bundle"
    labels: list[str]
    input_spec: dict[str, Any]
    config: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)


def _zip(data: bytes) -> zipfile.ZipFile:
    if not data:
        raise InvalidArtifact("The file is empty.")
    if len(data) > MAX_BYTES:
        raise InvalidArtifact(f"The file is larger than {MAX_BYTES // 2**20} MiB.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        bad = archive.testzip()
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise InvalidArtifact(
            "The file is neither a TorchScript model (torch.jit.save) nor a MONAI Bundle zip: it is not a zip archive."
        ) from exc
    if bad is not None:
        raise InvalidArtifact("The archive is corrupt (a member fails its CRC check); upload it again.")
    return archive


def _is_torchscript(names: list[str]) -> bool:
    return any(n.endswith("/data.pkl") for n in names) and any("/code/" in n for n in names)


def _declares_parameters(archive: zipfile.ZipFile) -> bool:
    """Whether any module of a TorchScript archive has parameters (see _DECLARES_PARAMETERS)."""
    code = (n for n in archive.namelist() if "/code/" in n and n.endswith(".py"))
    return any(_DECLARES_PARAMETERS.search(archive.read(n)) for n in code)


def _inner_torchscript(archive: zipfile.ZipFile, name: str) -> zipfile.ZipFile:
    """The bundle's models/model.ts, which must itself be a TorchScript archive."""
    try:
        inner = zipfile.ZipFile(io.BytesIO(archive.read(name)))
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise InvalidArtifact("The bundle's models/model.ts is not a TorchScript model (torch.jit.save).") from exc
    if not _is_torchscript(inner.namelist()):
        raise InvalidArtifact("The bundle's models/model.ts is a zip but not a TorchScript model (torch.jit.save).")
    return inner


def _member(names: list[str], suffix: str) -> str | None:
    """The shallowest member ending in ``suffix`` at the bundle's root or one folder down."""
    found = [n for n in names if n == suffix or (n.endswith("/" + suffix) and n.count("/") == suffix.count("/") + 1)]
    return min(found, key=len) if found else None


def inspect_artifact(
    data: bytes,
    *,
    labels: list[str] | None = None,
    window: tuple[float, float] | None = None,
    size: int | None = None,
    modality: str = "",
) -> Artifact:
    """Check an upload and say what it is; the form's ``labels``, ``window``, ``size`` win over the bundle's."""
    archive = _zip(data)
    names = archive.namelist()
    if _is_torchscript(names):
        if not labels:
            raise InvalidArtifact("A TorchScript model does not name its outputs: give its labels, in channel order.")
        return _artifact(
            "torchscript",
            labels,
            {},
            window=window,
            size=size,
            modality=modality,
            network=None,
            trainable=_declares_parameters(archive),
        )
    meta_name = _member(names, "configs/metadata.json")
    if meta_name is None:
        raise InvalidArtifact(
            "The zip is neither TorchScript nor a MONAI Bundle: a bundle needs configs/metadata.json "
            "(and configs/inference.json or .yaml, models/model.ts or models/model.pt)."
        )
    root = meta_name[: -len("configs/metadata.json")]
    metadata = _json(archive, meta_name)
    inference = _inference_config(archive, names, root)
    network: dict[str, Any] | None = None
    if root + "models/model.ts" in names:
        trainable = _declares_parameters(_inner_torchscript(archive, root + "models/model.ts"))
    else:
        if root + "models/model.pt" not in names:
            raise InvalidArtifact("The bundle has no models/model.ts (TorchScript) nor models/model.pt (weights).")
        network = _network_def(inference)
        trainable = True  # a state_dict, loaded into a MONAI network rebuilt here
    inputs = metadata.get("network_data_format", {}).get("inputs", {}).get("image", {})
    outputs = metadata.get("network_data_format", {}).get("outputs", {}).get("pred", {})
    declared = [str(v) for k, v in sorted(outputs.get("channel_def", {}).items(), key=lambda kv: int(kv[0]))]
    declared = [name for name in declared if name.lower() not in ("background", "other", "everything else")]
    chosen = labels or declared
    if not chosen:
        raise InvalidArtifact(
            "The bundle's metadata names no output channels (network_data_format.outputs.pred.channel_def): "
            "give the labels."
        )
    spatial = inputs.get("spatial_shape") or []
    if spatial and len(spatial) != 2:
        raise InvalidArtifact(
            f"The bundle's network takes {len(spatial)}-D input; only 2-D (slice) models can be imported so far."
        )
    found_window = window or _window_of(inference)
    found_size = size or (int(spatial[0]) if spatial and isinstance(spatial[0], int) else None)
    described = ("version", "task", "description", "authors", "copyright", "license")
    keep = {k: metadata[k] for k in described if k in metadata}
    return _artifact(
        "monai_bundle",
        chosen,
        keep,
        window=found_window,
        size=found_size,
        modality=modality or str(inputs.get("modality", "")),
        network=network,
        trainable=trainable,
        root=root,
    )


def _artifact(
    kind: str,
    labels: list[str],
    metadata: dict[str, Any],
    *,
    window: tuple[float, float] | None,
    size: int | None,
    modality: str,
    network: dict[str, Any] | None,
    trainable: bool,
    root: str = "",
) -> Artifact:
    config: dict[str, Any] = {
        "handler": "torchscript",
        "format": kind,
        "labels": list(labels),
        "window": list(window) if window else None,
        "size": size,
        "trainable": trainable,  # whether fine-tuning can start from it (refused at request time if not)
    }
    if kind == "monai_bundle":
        config["root"] = root
        config["network_def"] = network
    spec = {"modality": modality, "dims": 2, "spacing": None, "window": config["window"], "size": size}
    return Artifact(format=kind, labels=list(labels), input_spec=spec, config=config, metadata=metadata)


def _json(archive: zipfile.ZipFile, name: str) -> dict[str, Any]:
    try:
        value = json.loads(archive.read(name))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArtifact(f"{name.rsplit('/', 2)[-2]}/{name.rsplit('/', 1)[-1]} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidArtifact(f"{name.rsplit('/', 1)[-1]} must hold a JSON object.")
    return value


def _inference_config(archive: zipfile.ZipFile, names: list[str], root: str) -> dict[str, Any]:
    if root + "configs/inference.json" in names:
        return _json(archive, root + "configs/inference.json")
    for suffix in ("yaml", "yml"):
        if root + f"configs/inference.{suffix}" in names:
            import yaml

            try:
                value = yaml.safe_load(archive.read(root + f"configs/inference.{suffix}"))
            except yaml.YAMLError as exc:
                raise InvalidArtifact(f"configs/inference.{suffix} is not valid YAML: {exc}") from exc
            if not isinstance(value, dict):
                raise InvalidArtifact(f"configs/inference.{suffix} must hold a mapping.")
            return value
    raise InvalidArtifact("The bundle has no configs/inference.json (nor inference.yaml).")


def _network_def(inference: dict[str, Any]) -> dict[str, Any]:
    network = inference.get("network_def")
    if not isinstance(network, dict) or not isinstance(network.get("_target_"), str):
        raise InvalidArtifact("A bundle with models/model.pt needs a network_def with a _target_ in inference.json.")
    target = network["_target_"].rsplit(".", 1)[-1]
    if target not in NETWORKS:
        raise InvalidArtifact(
            f"network_def {network['_target_']!r} is not one of the MONAI networks rebuilt here "
            f"({', '.join(sorted(NETWORKS))}); export the model as TorchScript (models/model.ts) instead."
        )
    arguments = {k: v for k, v in network.items() if k != "_target_"}
    if any(isinstance(v, str) and v[:1] in ("@", "$", "%") for v in arguments.values()):
        raise InvalidArtifact("network_def arguments must be literal values (no @, $ or % references).")
    return {"_target_": target, **arguments}


def _window_of(inference: dict[str, Any]) -> tuple[float, float] | None:
    """a_min and a_max of the first ScaleIntensityRanged in the bundle's preprocessing, when literal."""
    stack: list[Any] = [inference.get("preprocessing", inference)]
    while stack:
        node = stack.pop(0)
        if isinstance(node, dict):
            if str(node.get("_target_", "")).endswith("ScaleIntensityRanged"):
                low, high = node.get("a_min"), node.get("a_max")
                if isinstance(low, (int, float)) and isinstance(high, (int, float)) and high > low:
                    return float(low), float(high)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None
