"""Augmentation recipes: a whitelist of transforms with typed, range-checked parameters. Pure.

Imports neither Django nor torch/MONAI, so the web process can validate a recipe without loading
a deep-learning stack; ``datasets.augment.transforms`` turns a canonical recipe into MONAI
transforms. The canonical recipe (what :func:`validate_recipe` returns and what a dataset version
freezes in its manifest)::

    {"seed": int, "materialize": bool, "copies": int, "transforms": [{"name": str, <params>}, ...]}

``copies`` is 0 unless ``materialize`` is true (then 1 to 10 augmented copies of every train
sample are written into the archive). Every parameter is filled in, so two recipes that mean the
same are equal.

Axes are the array's spatial axes (0, 1, 2) in the order the export format stores the volume,
without the channel; the default plane (0, 1) is the in-plane one for volumes stored slice-last
(NIfTI). A transform on an axis the data does not have (axis 2 of a 2-D slice) is skipped by the
transforms, so one recipe serves a 3-D and a 2-D loader.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

MAX_COPIES = 10
MAX_TRANSFORMS = 20
MAX_SEED = 2**31 - 1

_REQUIRED: Any = object()
Check = Callable[[Any], Any]  # returns the canonical value or raises _Invalid with what it wants


class _Invalid(ValueError):
    """A parameter value is wrong; the message says what a right one looks like."""


# --- parameter checks -----------------------------------------------------------------------------


def _finite(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Invalid("a number")
    return float(value)


def _number(low: float, high: float, *, low_open: bool = False) -> Check:
    bound = f"{'more than' if low_open else 'at least'} {low:g} and at most {high:g}"

    def check(value: Any) -> float:
        try:
            number = _finite(value)
        except _Invalid:
            raise _Invalid(f"a number {bound}") from None
        if number > high or number < low or (low_open and number == low):
            raise _Invalid(f"a number {bound}")
        return number

    return check


def _integer(low: int, high: int) -> Check:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _Invalid(f"a whole number from {low} to {high}")
        return value

    return check


def _axes(*, exactly: int | None = None) -> Check:
    want = "two different axes, e.g. [0, 1]" if exactly == 2 else "a non-empty list of different axes from 0, 1, 2"

    def check(value: Any) -> list[int]:
        if not isinstance(value, list | tuple) or not value or len(set(map(str, value))) != len(value):
            raise _Invalid(want)
        if exactly is not None and len(value) != exactly:
            raise _Invalid(want)
        if any(isinstance(a, bool) or not isinstance(a, int) or not 0 <= a <= 2 for a in value):
            raise _Invalid(want)
        return sorted(value) if exactly is None else list(value)

    return check


def _interval(low: float, high: float) -> Check:
    want = f"[minimum, maximum] with {low:g} <= minimum <= maximum <= {high:g}"

    def check(value: Any) -> list[float]:
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise _Invalid(want)
        try:
            a, b = _finite(value[0]), _finite(value[1])
        except _Invalid:
            raise _Invalid(want) from None
        if not low <= a <= b <= high:
            raise _Invalid(want)
        return [a, b]

    return check


def _per_axis(low: float, high: float) -> Check:
    """One number for every axis, or a list of one number per axis (0, 1, 2)."""
    want = f"a number from {low:g} to {high:g}, or a list of up to 3 such numbers (one per axis)"
    single = _number(low, high)

    def check(value: Any) -> float | list[float]:
        if isinstance(value, list | tuple):
            if not 1 <= len(value) <= 3:
                raise _Invalid(want)
            try:
                return [single(v) for v in value]
            except _Invalid:
                raise _Invalid(want) from None
        try:
            return single(value)
        except _Invalid:
            raise _Invalid(want) from None

    return check


_PROB = ("prob", _number(0.0, 1.0), 0.5)

# name -> (parameter, check, default); _REQUIRED where a default would have to guess the image's units.
TRANSFORMS: Mapping[str, tuple[tuple[str, Check, Any], ...]] = {
    "flip": (("spatial_axes", _axes(), [0, 1]), _PROB),  # each axis flipped on its own with prob
    "rotate90": (("spatial_axes", _axes(exactly=2), [0, 1]), ("max_k", _integer(1, 3), 3), _PROB),
    "rotate": (
        ("range_degrees", _number(0.0, 180.0, low_open=True), 15.0),  # angle drawn from [-range, range]
        ("spatial_axes", _axes(exactly=2), [0, 1]),  # the plane of rotation
        _PROB,
    ),
    "affine": (
        ("rotate_degrees", _number(0.0, 180.0), 0.0),  # in the plane spatial_axes
        ("scale", _number(0.0, 0.5), 0.1),  # each axis scaled by 1 + [-scale, scale]
        ("translate_px", _per_axis(0.0, 256.0), 0.0),  # voxels, drawn from [-t, t] per axis
        ("spatial_axes", _axes(exactly=2), [0, 1]),
        _PROB,
    ),
    "intensity_shift": (("offsets", _number(0.0, 10000.0, low_open=True), _REQUIRED), _PROB),  # image units
    "intensity_scale": (("factors", _number(0.0, 1.0, low_open=True), 0.1), _PROB),  # image * (1 + [-f, f])
    "gaussian_noise": (("std", _number(0.0, 10000.0, low_open=True), _REQUIRED), _PROB),  # std from [0, std]
    "gaussian_smooth": (("sigma", _interval(0.0, 10.0), [0.25, 1.5]), _PROB),  # voxels
    "contrast": (("gamma", _interval(0.1, 10.0), [0.7, 1.5]), _PROB),
}
NAMES = tuple(TRANSFORMS)


# --- the recipe -----------------------------------------------------------------------------------


def _transform(position: int, item: Any) -> dict[str, Any]:
    where = f"Augmentation transform {position}"
    if not isinstance(item, Mapping):
        raise ValueError(f'{where} must be an object like {{"name": "flip", "prob": 0.5}}.')
    name = item.get("name")
    if not isinstance(name, str) or name not in TRANSFORMS:
        raise ValueError(f"{where}: unknown transform {name!r}; choose one of {', '.join(NAMES)}.")
    where = f"{where} ({name})"
    params = TRANSFORMS[name]
    allowed = {p for p, _, _ in params}
    unknown = sorted(str(key) for key in item if key != "name" and key not in allowed)
    if unknown:
        raise ValueError(f"{where}: unknown parameter {unknown[0]!r}; it takes {', '.join(sorted(allowed))}.")
    out: dict[str, Any] = {"name": name}
    for param, check, default in params:
        if param not in item:
            if default is _REQUIRED:
                raise ValueError(f"{where}: '{param}' is required.")
            out[param] = list(default) if isinstance(default, list) else default
            continue
        try:
            out[param] = check(item[param])
        except _Invalid as exc:
            raise ValueError(f"{where}: '{param}' must be {exc} (got {item[param]!r}).") from None
    if name == "affine" and not (out["rotate_degrees"] or out["scale"] or _any_nonzero(out["translate_px"])):
        raise ValueError(f"{where}: set at least one of rotate_degrees, scale, translate_px above 0.")
    return out


def _any_nonzero(value: float | list[float]) -> bool:
    return any(value) if isinstance(value, list) else bool(value)


def validate_recipe(value: Any) -> dict[str, Any]:
    """The canonical recipe with defaults filled in; ValueError naming the transform and parameter.

    ``None`` or ``{}`` is the empty recipe (no augmentation). Pure and idempotent: a canonical
    recipe validates to itself.
    """
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise ValueError('The augmentation recipe must be an object like {"seed": 0, "transforms": [...]}.')
    unknown = sorted(str(key) for key in value if key not in ("seed", "materialize", "copies", "transforms"))
    if unknown:
        raise ValueError(
            f"The augmentation recipe has an unknown key {unknown[0]!r}; "
            "it takes seed, materialize, copies, transforms."
        )
    seed = value.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"The augmentation seed must be a whole number from 0 to {MAX_SEED} (got {seed!r}).")
    materialize = value.get("materialize", False)
    if not isinstance(materialize, bool):
        raise ValueError(f"The augmentation's 'materialize' must be true or false (got {materialize!r}).")
    transforms = value.get("transforms", [])
    if not isinstance(transforms, list | tuple) or len(transforms) > MAX_TRANSFORMS:
        raise ValueError(f"The augmentation's 'transforms' must be a list of at most {MAX_TRANSFORMS} transforms.")
    clean = [_transform(n, item) for n, item in enumerate(transforms, start=1)]
    copies = value.get("copies", 1 if materialize else 0)
    if isinstance(copies, bool) or not isinstance(copies, int):
        raise ValueError(f"The augmentation's 'copies' must be a whole number (got {copies!r}).")
    if materialize:
        if not 1 <= copies <= MAX_COPIES:
            raise ValueError(f"The augmentation's 'copies' must be from 1 to {MAX_COPIES} when materialize is true.")
        if not clean:
            raise ValueError("Materialized augmentation needs at least one transform (the copies would be duplicates).")
    elif copies != 0:
        raise ValueError("The augmentation's 'copies' needs 'materialize': true (copies are written into the archive).")
    return {"seed": seed, "materialize": materialize, "copies": copies, "transforms": clean}
