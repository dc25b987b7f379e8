"""Augmentation recipes: validation, joint image/label/box transforms, determinism, materialized copies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from datasets.augment import copy_seed, make_augmenter
from datasets.augment.recipe import validate_recipe
from datasets.augment.transforms import build_transforms, materialize
from datasets.exporters.base import Sample

TRANSFORMS_FILE = Path(__file__).resolve().parents[1] / "augment" / "transforms.py"
SPATIAL = ["flip", "rotate90", "rotate", "affine"]


def recipe(*steps: dict[str, Any], seed: int = 0, **top: Any) -> dict[str, Any]:
    return validate_recipe({"seed": seed, "transforms": list(steps), **top})


def always(name: str, **params: Any) -> dict[str, Any]:
    return {"name": name, "prob": 1.0, **params}


def blob(shape: tuple[int, ...] = (48, 40, 10)) -> tuple[np.ndarray, np.ndarray]:
    """An off-centre bright ellipsoid on a dark background and its label (1 inside)."""
    grid = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    centre = [f * n for f, n in zip((0.35, 0.6, 0.5), shape, strict=False)]
    radius = [f * n for f, n in zip((0.2, 0.15, 0.3), shape, strict=False)]
    inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radius, strict=True)) <= 1
    image = np.where(inside, 1000, 0).astype(np.int16)
    return image, inside.astype(np.uint8)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


# --- validation -------------------------------------------------------------------------------------


def test_empty_recipe_means_no_augmentation() -> None:
    empty = {"seed": 0, "materialize": False, "copies": 0, "transforms": []}
    assert validate_recipe(None) == validate_recipe({}) == empty


def test_defaults_are_filled_in_and_the_result_is_canonical() -> None:
    clean = validate_recipe(
        {"seed": 7, "materialize": True, "transforms": [{"name": "flip"}, {"name": "gaussian_noise", "std": 10}]}
    )
    assert clean == {
        "seed": 7,
        "materialize": True,
        "copies": 1,
        "transforms": [
            {"name": "flip", "spatial_axes": [0, 1], "prob": 0.5},
            {"name": "gaussian_noise", "std": 10.0, "prob": 0.5},
        ],
    }
    assert validate_recipe(clean) == clean
    assert json.loads(json.dumps(clean)) == clean


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "must be an object"),
        ({"sed": 1}, "unknown key 'sed'"),
        ({"seed": -1}, "seed must be a whole number"),
        ({"seed": True}, "seed must be a whole number"),
        ({"materialize": "yes"}, "'materialize' must be true or false"),
        ({"copies": 2}, "needs 'materialize': true"),
        ({"materialize": True, "copies": 11, "transforms": [{"name": "flip"}]}, "from 1 to 10"),
        ({"materialize": True, "copies": 2}, "at least one transform"),
        ({"transforms": {"name": "flip"}}, "must be a list"),
        ({"transforms": ["flip"]}, "Augmentation transform 1 must be an object"),
        ({"transforms": [{"name": "elastic"}]}, "Augmentation transform 1: unknown transform 'elastic'"),
        ({"transforms": [{"name": "flip"}, {"name": "flip", "prob": 2}]}, "transform 2 (flip): 'prob' must be"),
        ({"transforms": [{"name": "flip", "prob": "0.5"}]}, "(flip): 'prob' must be a number"),
        ({"transforms": [{"name": "flip", "spatial_axes": [0, 3]}]}, "(flip): 'spatial_axes'"),
        ({"transforms": [{"name": "flip", "spatial_axes": [1, 1]}]}, "(flip): 'spatial_axes'"),
        ({"transforms": [{"name": "rotate90", "max_k": 4}]}, "(rotate90): 'max_k' must be a whole number from 1 to 3"),
        ({"transforms": [{"name": "rotate90", "spatial_axes": [0]}]}, "(rotate90): 'spatial_axes' must be two"),
        ({"transforms": [{"name": "rotate", "range_degrees": 0}]}, "(rotate): 'range_degrees' must be a number more"),
        ({"transforms": [{"name": "affine", "translate_mm": 5}]}, "(affine): unknown parameter 'translate_mm'"),
        ({"transforms": [{"name": "affine", "scale": 0}]}, "(affine): set at least one of"),
        ({"transforms": [{"name": "affine", "translate_px": [1, 2, 3, 4]}]}, "(affine): 'translate_px'"),
        ({"transforms": [{"name": "intensity_shift"}]}, "(intensity_shift): 'offsets' is required"),
        ({"transforms": [{"name": "intensity_scale", "factors": 1.5}]}, "(intensity_scale): 'factors'"),
        ({"transforms": [{"name": "gaussian_noise", "std": float("nan")}]}, "(gaussian_noise): 'std'"),
        ({"transforms": [{"name": "gaussian_smooth", "sigma": [2, 1]}]}, "(gaussian_smooth): 'sigma' must be [minimum"),
        ({"transforms": [{"name": "contrast", "gamma": 2}]}, "(contrast): 'gamma' must be [minimum, maximum]"),
    ],
)
def test_invalid_recipes_name_what_to_fix(value: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        validate_recipe(value)
    assert message in str(caught.value)


# --- joint application ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SPATIAL)
def test_spatial_transforms_move_image_and_label_together(name: str) -> None:
    image, label = blob()
    params = {"affine": {"rotate_degrees": 20, "translate_px": 4}, "rotate": {"range_degrees": 30}}.get(name, {})
    steps = recipe(always(name, **params), seed=3)
    new_image, new_label, applied = materialize(image, label, steps, seed=11)
    assert applied["transforms"][0]["applied"]
    assert not np.array_equal(new_label, label)  # it moved
    assert set(np.unique(new_label)) <= {0, 1} and new_label.dtype == np.uint8
    inside = new_image > 500
    if name in ("flip", "rotate90"):
        assert np.array_equal(inside, new_label.astype(bool))  # voxel for voxel
    else:  # resampled: bilinear image and nearest-neighbour label differ on the rim only
        assert dice(inside, new_label.astype(bool)) > 0.95


def test_label_classes_stay_integers_through_interpolating_transforms() -> None:
    image, label = blob()
    label = label * np.where(np.arange(label.shape[0])[:, None, None] < 17, 2, 5).astype(np.uint8)  # classes 2, 5
    steps = recipe(always("rotate", range_degrees=40), always("affine", rotate_degrees=30, scale=0.2))
    _, new_label, _ = materialize(image, label, steps, seed=1)
    assert set(np.unique(new_label)) == {0, 2, 5}


def test_intensity_transforms_leave_the_label_alone() -> None:
    image, label = blob()
    steps = recipe(
        always("intensity_shift", offsets=50),
        always("intensity_scale"),
        always("gaussian_noise", std=20),
        always("gaussian_smooth"),
        always("contrast"),
    )
    new_image, new_label, applied = materialize(image, label, steps, seed=5)
    assert np.array_equal(new_label, label) and not np.array_equal(new_image, image)
    assert [t["applied"] for t in applied["transforms"]] == [True] * 5


def test_materialize_is_deterministic_per_seed() -> None:
    image, label = blob()
    steps = recipe(always("flip"), always("rotate"), always("gaussian_noise", std=30))
    first = materialize(image, label, steps, seed=42)
    again = materialize(image, label, steps, seed=42)
    other = materialize(image, label, steps, seed=43)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1]) and first[2] == again[2]
    assert not np.array_equal(first[0], other[0])


def test_materialize_returns_the_applied_parameters() -> None:
    image, label = blob()
    steps = recipe(
        always("flip", spatial_axes=[1]),
        always("rotate90", max_k=1),
        always("rotate", range_degrees=20),
        always("affine", scale=0.1),
        always("intensity_shift", offsets=50),
        always("gaussian_noise", std=10),
        always("contrast"),
        {"name": "intensity_scale", "prob": 0.0},
    )
    _, _, applied = materialize(image, label, steps, seed=9)
    json.dumps(applied)  # JSON-ready
    flip, rot90, rotate, affine, shift, noise, contrast, scale = applied["transforms"]
    assert applied["seed"] == 9
    assert flip == {"name": "flip", "applied": True, "axes": [1]}
    assert rot90 == {"name": "rotate90", "applied": True, "k": 1, "spatial_axes": [0, 1]}
    assert -20 <= rotate["angle_degrees"] <= 20 and np.asarray(rotate["matrix"]).shape == (4, 4)
    assert np.asarray(affine["matrix"]).shape == (4, 4)
    assert -50 <= shift["offset"] <= 50
    assert 0 <= noise["std"] <= 10.5
    assert 0.7 <= contrast["gamma"] <= 1.5
    assert scale == {"name": "intensity_scale", "applied": False}


def test_a_2d_loader_skips_transforms_on_the_slice_axis() -> None:
    image, label = blob((48, 40))
    steps = recipe(always("flip", spatial_axes=[2]), always("rotate", spatial_axes=[1, 2]), always("rotate90"))
    _, new_label, applied = materialize(image, label, steps, seed=0)
    assert [t["applied"] for t in applied["transforms"]] == [False, False, True]
    assert np.array_equal(new_label, np.rot90(label, applied["transforms"][2]["k"]))


# --- on the fly, with boxes -------------------------------------------------------------------------


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_build_transforms_moves_boxes_with_the_label(spatial_dims: int) -> None:
    image, label = blob((48, 40, 10)[:spatial_dims])
    where = np.argwhere(label)
    box = np.concatenate([where.min(0), where.max(0)]).astype(np.float32)[None]
    steps = recipe(always("flip"), always("rotate90"), always("affine", translate_px=3, scale=0.0), seed=4)
    transform = build_transforms(steps, spatial_dims=spatial_dims, box_keys=["box"])
    out = transform({"image": image[None].astype(np.float32), "label": label[None].astype(np.float32), "box": box})
    moved = np.argwhere(out["label"][0].numpy() > 0)
    expected = np.concatenate([moved.min(0), moved.max(0)])
    assert np.abs(np.asarray(out["box"])[0] - expected).max() <= 1.0
    assert "box__points" not in out


def test_build_transforms_is_seeded_by_the_recipe() -> None:
    image, label = blob()
    data = {"image": image[None].astype(np.float32), "label": label[None].astype(np.float32)}
    steps = recipe(*(always(n, **({"rotate_degrees": 10} if n == "affine" else {})) for n in SPATIAL), seed=8)
    first = build_transforms(steps)(dict(data))["label"]
    again = build_transforms(steps)(dict(data))["label"]
    assert np.array_equal(np.asarray(first), np.asarray(again))


def test_empty_recipe_changes_nothing() -> None:
    image, label = blob()
    out = build_transforms(validate_recipe({}))({"image": image[None], "label": label[None]})
    assert np.array_equal(np.asarray(out["image"])[0], image) and np.array_equal(np.asarray(out["label"])[0], label)


# --- the exporter hook ------------------------------------------------------------------------------


def sample(key: str, split: str) -> Sample:
    return Sample(key, "P1", "1.2", "1.2.3", "CT", split, None, (), ())


def test_augmenter_writes_seeded_copies_of_train_samples_only() -> None:
    image, label = blob((32, 32, 6))
    augment = make_augmenter(
        {"seed": 5, "materialize": True, "copies": 2, "transforms": [always("rotate90"), always("flip")]}
    )
    copies = augment(sample("case-1", "train"), image, label)
    assert [suffix for suffix, *_ in copies] == ["aug01", "aug02"]
    assert [params["seed"] for *_, params in copies] == [copy_seed(5, "case-1", 1), copy_seed(5, "case-1", 2)]
    assert copies[0][3]["copy"] == 1 and copies[0][3]["transforms"][0]["name"] == "rotate90"
    assert [params for *_, params in augment(sample("case-1", "train"), image, label)] == [p for *_, p in copies]
    assert augment(sample("case-1", "validation"), image, label) == []
    assert augment(sample("case-1", "test"), image, label) == []
    assert copy_seed(5, "case-2", 1) != copy_seed(5, "case-1", 1)


def test_augmenter_without_materialize_writes_nothing() -> None:
    image, label = blob((16, 16, 4))
    assert make_augmenter({"transforms": [{"name": "flip"}]})(sample("a", "train"), image, label) == []


# --- standalone -------------------------------------------------------------------------------------


def test_the_archive_copy_imports_without_workbench_or_django(tmp_path: Path) -> None:
    """The export copies transforms.py into archives as workbench_augment.py: it must stand alone."""
    (tmp_path / "workbench_augment.py").write_bytes(TRANSFORMS_FILE.read_bytes())
    code = (
        "import sys, importlib.util, json, numpy as np\n"
        "spec = importlib.util.spec_from_file_location('workbench_augment', 'workbench_augment.py')\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "recipe = {'seed': 1, 'transforms': [{'name': 'flip', 'spatial_axes': [0], 'prob': 1.0}]}\n"
        "image, label, applied = module.materialize(np.eye(4), np.eye(4, dtype=np.uint8), recipe, seed=1)\n"
        "assert (label == np.eye(4, dtype=np.uint8)[::-1]).all(), label\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'datasets', 'workbench'))\n"
        "print(json.dumps({'leaked': leaked, 'applied': applied}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["leaked"] == []
    assert result["applied"]["transforms"] == [{"name": "flip", "applied": True, "axes": [0]}]
