"""Workbench augmentation recipes as MONAI transforms. Standalone: numpy, torch and MONAI only.

Every export archive carries this very file as ``workbench_augment.py`` next to the recipe it
was frozen with (``augmentation.json``), so a training loop applies the same augmentation on the
fly::

    import json, workbench_augment
    recipe = json.load(open("augmentation.json"))
    augment = workbench_augment.build_transforms(recipe, keys=("image", "label"), spatial_dims=3)
    # data dicts with channel-first "image" and "label" (e.g. after LoadImaged + EnsureChannelFirstd)
    train_ds = monai.data.Dataset(train_files, transform=Compose([load, augment]))

The recipe is the canonical one (every parameter present; ``datasets.augment.recipe`` checks it
in Workbench). Spatial transforms move the image, the labels and, given ``box_keys``, boxes
together; labels are resampled with nearest-neighbour so their values stay class indices.
Intensity transforms touch the image only. Axes are the data's spatial axes (no channel); a
transform on an axis the data lacks (axis 2 of a 2-D slice) is left out, so a 3-D recipe also
serves a 2-D loader.

Boxes use MONAI's points machinery (monai>=1.5): each box's corners are taken to world
coordinates through the image's affine before the spatial transforms and back into the
transformed image's voxel grid after them, and the new box is the bounding box of the moved
corners (so a rotated box grows to hold the rotated one). Boxes are ``(N, 2 * spatial_dims)``
arrays ``[lo_0, lo_1, (lo_2,) hi_0, hi_1, (hi_2)]`` in voxel-centre coordinates of the image's
spatial axes, clipped to the image after the transforms.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from monai.data import MetaTensor
from monai.transforms import (
    ApplyTransformToPointsd,
    Compose,
    ConvertBoxToPointsd,
    ConvertPointsToBoxesd,
    DeleteItemsd,
    EnsureTyped,
    MapTransform,
    RandAdjustContrastd,
    RandAffined,
    RandFlipd,
    RandGaussianNoised,
    RandGaussianSmoothd,
    RandRotate90d,
    RandRotated,
    RandScaleIntensityd,
    RandShiftIntensityd,
)
from monai.utils import TraceKeys

__all__ = ["build_transforms", "materialize"]

_DIGITS = 6  # applied parameters are rounded for readable, stable JSON


class _ClipBoxesd(MapTransform):
    """Clip boxes to the reference image's voxel extent (after rotation or translation)."""

    def __init__(self, keys: Sequence[Hashable], image_key: Hashable) -> None:
        super().__init__(keys)
        self.image_key = image_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        high = torch.as_tensor(d[self.image_key].shape[1:], dtype=torch.float64) - 1
        for key in self.key_iterator(d):
            boxes = torch.as_tensor(d[key], dtype=torch.float64)
            dims = boxes.shape[-1] // 2
            limit = torch.cat([high[:dims], high[:dims]])
            d[key] = torch.minimum(torch.clamp(boxes, min=0), limit)
        return d


def _plane(step: Mapping[str, Any], spatial_dims: int) -> tuple[int, int] | None:
    a, b = step["spatial_axes"]
    return (int(a), int(b)) if max(a, b) < spatial_dims else None


def _rotation(radians: float, plane: tuple[int, int], spatial_dims: int) -> tuple[float, ...]:
    """MONAI's per-axis rotation ranges: in 2-D one angle; in 3-D the angle about the axis not in the plane."""
    if spatial_dims == 2:
        return (radians,)
    about = 3 - plane[0] - plane[1]
    return tuple(radians if axis == about else 0.0 for axis in range(3))


def _per_axis(value: float | Sequence[float], spatial_dims: int) -> tuple[float, ...]:
    if isinstance(value, int | float):
        return (float(value),) * spatial_dims
    values = [float(v) for v in value][:spatial_dims]
    return tuple(values + [0.0] * (spatial_dims - len(values)))


def _steps(recipe: Mapping[str, Any], keys: Sequence[Hashable], spatial_dims: int) -> list[tuple[int, str, Any]]:
    """(recipe position, transform name, MONAI transform) for each transform that applies to these data."""
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, not {spatial_dims}.")
    keys = list(keys)
    image = keys[:1]
    modes = ["bilinear"] + ["nearest"] * (len(keys) - 1)  # labels keep their class values
    pads = ["border"] + ["zeros"] * (len(keys) - 1)  # new label voxels are background
    out: list[tuple[int, str, Any]] = []
    for n, step in enumerate(recipe.get("transforms") or []):
        name, prob = step["name"], float(step["prob"])
        plane = _plane(step, spatial_dims) if "spatial_axes" in step and name != "flip" else None
        if name == "flip":
            for axis in step["spatial_axes"]:
                if axis < spatial_dims:
                    out.append((n, name, RandFlipd(keys, prob=prob, spatial_axis=int(axis))))
        elif name == "rotate90" and plane:
            out.append((n, name, RandRotate90d(keys, prob=prob, max_k=int(step["max_k"]), spatial_axes=plane)))
        elif name == "rotate" and plane:
            x, y, z = (*_rotation(math.radians(step["range_degrees"]), plane, spatial_dims), 0.0, 0.0)[:3]
            rotate = RandRotated(
                keys, range_x=x, range_y=y, range_z=z, prob=prob, keep_size=True, mode=modes, padding_mode=pads
            )
            out.append((n, name, rotate))
        elif name == "affine" and plane:
            transform = RandAffined(
                keys,
                prob=prob,
                rotate_range=_rotation(math.radians(step["rotate_degrees"]), plane, spatial_dims),
                scale_range=(float(step["scale"]),) * spatial_dims,
                translate_range=_per_axis(step["translate_px"], spatial_dims),
                mode=modes,
                padding_mode=pads,
            )
            out.append((n, name, transform))
        elif name == "intensity_shift":
            out.append((n, name, RandShiftIntensityd(image, offsets=float(step["offsets"]), prob=prob)))
        elif name == "intensity_scale":
            out.append((n, name, RandScaleIntensityd(image, factors=float(step["factors"]), prob=prob)))
        elif name == "gaussian_noise":
            out.append((n, name, RandGaussianNoised(image, prob=prob, mean=0.0, std=float(step["std"]))))
        elif name == "gaussian_smooth":
            sigma = (float(step["sigma"][0]), float(step["sigma"][1]))
            out.append((n, name, RandGaussianSmoothd(image, sigma_x=sigma, sigma_y=sigma, sigma_z=sigma, prob=prob)))
        elif name == "contrast":
            gamma = (float(step["gamma"][0]), float(step["gamma"][1]))
            out.append((n, name, RandAdjustContrastd(image, gamma=gamma, prob=prob)))
        elif name not in ("rotate90", "rotate", "affine"):
            raise ValueError(f"Unknown augmentation transform {name!r}; validate the recipe in Workbench first.")
    return out


def build_transforms(
    recipe: Mapping[str, Any],
    keys: Sequence[Hashable] = ("image", "label"),
    spatial_dims: int = 3,
    *,
    box_keys: Sequence[Hashable] = (),
) -> Compose:
    """MONAI dictionary transforms for ``recipe``, seeded with the recipe's seed.

    ``keys[0]`` is the image; the other keys are label maps (nearest-neighbour). Data are
    channel-first (C, *spatial). ``box_keys`` name box arrays that move with the image (see the
    module docstring). An empty recipe gives a Compose that changes nothing.
    """
    keys = list(keys)
    transforms: list[Any] = [EnsureTyped(keys, data_type="tensor", track_meta=True)]
    points = [f"{key}__points" for key in box_keys]
    for key, point_key in zip(box_keys, points, strict=True):
        transforms.append(ConvertBoxToPointsd(key, point_key=point_key))
        transforms.append(ApplyTransformToPointsd(point_key, refer_keys=keys[0], invert_affine=False))
    transforms += [transform for _, _, transform in _steps(recipe, keys, spatial_dims)]
    for key, point_key in zip(box_keys, points, strict=True):
        transforms.append(ApplyTransformToPointsd(point_key, refer_keys=keys[0], invert_affine=True))
        transforms.append(ConvertPointsToBoxesd(point_key, box_key=key))
    if box_keys:
        transforms += [DeleteItemsd(points), _ClipBoxesd(list(box_keys), keys[0])]
    compose = Compose(transforms)
    compose.set_random_state(seed=int(recipe.get("seed", 0)))
    return compose


# --- materialized copies --------------------------------------------------------------------------


def _round(value: Any) -> Any:
    if isinstance(value, torch.Tensor | np.ndarray):
        value = value.tolist()
    if isinstance(value, list | tuple):
        return [_round(v) for v in value]
    if isinstance(value, float | np.floating):
        return round(float(value), _DIGITS) + 0.0  # + 0.0 turns -0.0 into 0.0
    if isinstance(value, np.integer):
        return int(value)
    return value


def _innermost(op: Mapping[Any, Any]) -> Mapping[Any, Any]:
    """The array transform's own record, under the dictionary and random wrappers' records."""
    info = op.get(TraceKeys.EXTRA_INFO) or {}
    while TraceKeys.CLASS_NAME in info:
        info = info.get(TraceKeys.EXTRA_INFO) or {}
    return info


def _angle(matrix: Any, plane: tuple[int, int]) -> float:
    m = np.asarray(matrix, dtype=np.float64)
    a, b = plane
    return math.degrees(math.atan2(m[b, a], m[a, a]))


def _applied(recipe: Mapping[str, Any], steps: list[tuple[int, str, Any]], image: MetaTensor) -> list[dict[str, Any]]:
    """One record per recipe transform: whether it was applied and the values drawn.

    Spatial transforms are read from MONAI's trace on the image (``applied_operations``);
    intensity transforms are not traced by MONAI, so their drawn values are read from the
    transform objects, which keep the last draw.
    """
    trace = {op.get(TraceKeys.ID): op for op in image.applied_operations}
    records: list[dict[str, Any]] = [
        {"name": step["name"], "applied": False} for step in recipe.get("transforms") or []
    ]
    for n, name, transform in steps:
        record = records[n]
        op = trace.get(id(transform))
        if op is not None:
            if not op.get(TraceKeys.DO_TRANSFORM):
                continue
            info = _innermost(op)
            if name == "flip":
                record.setdefault("axes", []).append(int(info["axes"]))
            elif name == "rotate90":
                record.update(k=int(info["k"]), spatial_axes=[int(a) for a in info["axes"]])
            elif name == "rotate":
                plane = (
                    int(recipe["transforms"][n]["spatial_axes"][0]),
                    int(recipe["transforms"][n]["spatial_axes"][1]),
                )
                record.update(angle_degrees=_angle(info["rot_mat"], plane), matrix=info["rot_mat"])
            elif name == "affine":
                record.update(matrix=info["affine"])
            record["applied"] = True
        elif getattr(transform, "_do_transform", False):
            record["applied"] = True
            if name == "intensity_shift":
                record["offset"] = transform.shifter._offset
            elif name == "intensity_scale":
                record["factor"] = transform.scaler.factor
            elif name == "gaussian_noise":
                # MONAI draws the std from [0, std] and keeps only the noise; this is that noise's std.
                record["std"] = float(np.asarray(transform.rand_gaussian_noise.noise).std())
            elif name == "gaussian_smooth":
                smooth = transform.rand_smooth
                record["sigma"] = [smooth.x, smooth.y, smooth.z][: image.ndim - 1]
            elif name == "contrast":
                record["gamma"] = transform.adjuster.gamma_value
    return [{key: _round(value) for key, value in record.items()} for record in records]


def _cast(values: torch.Tensor, dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    array = values.detach().cpu().numpy()
    if np.issubdtype(dtype, np.integer) or dtype == np.bool_:
        info = np.iinfo(dtype) if dtype != np.bool_ else np.iinfo(np.uint8)
        array = np.clip(np.rint(array), info.min, info.max)
    return array.astype(dtype)


def materialize(
    image: npt.NDArray[Any], label: npt.NDArray[Any], recipe: Mapping[str, Any], *, seed: int
) -> tuple[npt.NDArray[Any], npt.NDArray[Any], dict[str, Any]]:
    """Apply ``recipe`` once to an image and its label map (same spatial shape, no channel axis).

    Deterministic: the same arrays, recipe and ``seed`` give the same output (the recipe's own
    seed is not used; the caller derives one per copy). Returns arrays of the input dtypes and
    ``{"seed": seed, "transforms": [{"name", "applied", <values drawn>}, ...]}`` (JSON-ready).
    """
    if image.shape != label.shape:
        raise ValueError(f"The image is {image.shape} but its label map is {label.shape}.")
    spatial_dims = image.ndim
    steps = _steps(recipe, ("image", "label"), spatial_dims)
    compose = Compose([EnsureTyped(["image", "label"], track_meta=True)] + [t for _, _, t in steps])
    compose.set_random_state(seed=seed)
    data = {
        "image": MetaTensor(torch.as_tensor(np.asarray(image, dtype=np.float32)[None])),
        "label": MetaTensor(torch.as_tensor(np.asarray(label, dtype=np.float32)[None])),
    }
    out = compose(data)
    applied = _applied(recipe, steps, out["image"])
    return (
        _cast(out["image"][0], image.dtype),
        _cast(out["label"][0], label.dtype),
        {"seed": seed, "transforms": applied},
    )
