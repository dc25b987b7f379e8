"""The pure segmentation core on synthetic slices: trains with MONAI's engines, resumes, fine-tunes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from inference.handlers import handler_class
from inference.handlers.base import EpochReport, TrainConfig

torch = pytest.importorskip("torch")


def write_slices(root: Path, *, train: int = 24, validation: int = 8, size: int = 48) -> None:
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for split, count in (("train", train), ("validation", validation)):
        (root / split).mkdir(parents=True)
        for n in range(count):
            image = np.full((size, size), -850.0, dtype=np.float32)
            cx, cy, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.08, 0.15)
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r**2
            image[mask] = 40.0
            image += rng.normal(0, 20, image.shape).astype(np.float32)
            np.savez(root / split / f"{n:04d}.npz", image=image, label=mask.astype(np.uint8))


CONFIG = TrainConfig(labels=("Nodule",), epochs=4, size=32, channels=(8, 16, 32), batch_size=8, learning_rate=1e-2)


def test_trains_and_predicts_objects(tmp_path: Path) -> None:
    write_slices(tmp_path / "data")
    handler = handler_class("segmentation")
    reports: list[EpochReport] = []
    result = handler.train(tmp_path / "data", CONFIG, tmp_path / "work", progress=lambda r: reports.append(r) or True)
    assert [r.epoch for r in reports] == [1, 2, 3, 4]
    assert result.epochs_run == 4 and result.resumed_from == 0 and 0 < result.best_epoch <= 4
    assert result.dice == max(r.dice for r in reports)
    loaded = handler(result.weights, CONFIG.to_dict())
    image = np.load(next((tmp_path / "data" / "validation").glob("*.npz")))["image"]
    (objects,) = loaded.predict([image])
    assert all(o.label == "Nodule" and 0 <= o.score <= 1 and o.mask.shape == image.shape for o in objects)


def test_an_interrupted_training_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    write_slices(tmp_path / "data")
    handler = handler_class("segmentation")

    def crash(report: EpochReport) -> bool:
        if report.epoch == 2:
            raise KeyboardInterrupt("worker lost")  # what a killed worker leaves: checkpoints up to epoch 2
        return True

    with pytest.raises(KeyboardInterrupt):
        handler.train(tmp_path / "data", CONFIG, tmp_path / "work", progress=crash)
    seen: list[int] = []
    result = handler.train(
        tmp_path / "data", CONFIG, tmp_path / "work", progress=lambda r: seen.append(r.epoch) or True
    )
    assert result.resumed_from == 2 and seen == [3, 4]
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]


def test_cancel_stops_after_the_epoch(tmp_path: Path) -> None:
    write_slices(tmp_path / "data")
    result = handler_class("segmentation").train(tmp_path / "data", CONFIG, tmp_path / "work", progress=lambda r: False)
    assert result.epochs_run == 1


def test_fine_tuning_starts_from_the_parents_weights(tmp_path: Path) -> None:
    write_slices(tmp_path / "data")
    handler = handler_class("segmentation")
    parent = handler.train(tmp_path / "data", CONFIG, tmp_path / "parent")
    # Learning rate 0: what comes out is exactly what went in, so the weights must be the parent's.
    frozen = TrainConfig.from_dict(CONFIG.to_dict() | {"epochs": 1, "learning_rate": 0.0})
    child = handler.train(tmp_path / "data", frozen, tmp_path / "child", parent_weights=parent.weights)
    fresh = handler.train(tmp_path / "data", frozen, tmp_path / "fresh")
    a, b, c = (torch.load(io.BytesIO(w), weights_only=True) for w in (parent.weights, child.weights, fresh.weights))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_the_class_map_is_the_argmax_over_classes() -> None:
    from inference.handlers.segmentation import _class_map

    generator = torch.Generator().manual_seed(0)
    for classes in (2, 3, 5):
        probabilities = torch.softmax(torch.randn(3, classes, 17, 23, generator=generator), dim=1)
        assert torch.equal(_class_map(probabilities), probabilities.argmax(dim=1))
    tied = torch.full((1, 3, 2, 2), 1 / 3)
    assert torch.equal(_class_map(tied), torch.zeros(1, 2, 2, dtype=torch.int64))  # the first maximum wins


def _objects_reference(probabilities, shape, labels):  # type: ignore[no-untyped-def]
    """objects_of as it was: every slice resized, labelled and averaged over the whole slice."""
    import torch.nn.functional as F
    from scipy import ndimage

    full = F.interpolate(probabilities, size=shape, mode="bilinear", align_corners=False)
    out = []
    for probs, classes in zip(full.numpy(), full.argmax(dim=1).numpy(), strict=True):
        objects = []
        for index, name in enumerate(labels, start=1):
            components, count = ndimage.label(classes == index)
            scores = ndimage.mean(probs[index], components, np.arange(1, count + 1)) if count else []
            for n, box in enumerate(ndimage.find_objects(components), start=1):
                mask = np.zeros(shape, dtype=bool)
                mask[box] = components[box] == n
                objects.append((name, mask, float(scores[n - 1])))
        out.append(objects)
    return out


def test_objects_are_those_of_the_whole_slice_and_empty_slices_are_skipped() -> None:
    from inference.handlers import segmentation

    generator = torch.Generator().manual_seed(1)
    for classes, shape in ((2, (96, 96)), (3, (70, 90)), (4, (32, 32))):
        logits = torch.randn(6, classes, 24, 24, generator=generator) * 3
        logits[:, 0] += torch.linspace(0, 8, 6)[:, None, None]  # from busy slices to nearly empty ones
        logits[4] = -10.0
        logits[4, 0], logits[4, 1, 7:10, 9:12] = 0.0, 0.05  # one spot where a label barely wins
        logits[5, 0] = 40.0  # certainly background: no object, and not resized
        probabilities = torch.softmax(logits, dim=1)
        labels = [f"L{n}" for n in range(1, classes)]
        got = segmentation.objects_of(probabilities, shape, labels)
        want = _objects_reference(probabilities, shape, labels)
        assert got[5] == [] and len(got[4]) == 1 and sum(len(one) for one in got) > 20
        _same_objects(got, want)


def _same_objects(got, want) -> None:  # type: ignore[no-untyped-def]
    """The same objects, masks to the pixel; scores a float32 rounding apart (the resize of a part
    of a slice may sum in another order than torch does over the whole slice)."""
    for mine, theirs in zip(got, want, strict=True):
        assert [o.label for o in mine] == [name for name, _, _ in theirs]
        assert all(np.array_equal(o.mask, mask) for o, (_, mask, _) in zip(mine, theirs, strict=True))
        assert [o.score for o in mine] == pytest.approx([score for _, _, score in theirs], rel=1e-6, abs=1e-7)


def test_resizing_only_where_a_label_comes_near_finds_what_the_whole_slice_resize_finds() -> None:
    """The rectangle path of objects_of (whole factors) against resizing every slice whole:
    random maps, and spots at the grid's edges and corners, single pixels, labels just inside
    and just outside EMPTY_MARGIN, and far-apart spots whose rectangle spans the slice."""
    from inference.handlers import segmentation

    generator = torch.Generator().manual_seed(11)
    cases = []
    for grid, shape in (((16, 16), (64, 64)), ((24, 20), (96, 40)), ((16, 32), (128, 32)), ((12, 12), (12, 12))):
        for classes in (2, 3):
            logits = torch.randn(12, classes, *grid, generator=generator) * 3
            logits[:, 0] += 6.0  # mostly background, as real slices are
            edits = logits[2:]
            edits[:] = -20.0
            edits[:, 0] = 0.0
            h, w = grid
            spots = [(0, 0), (h - 1, w - 1), (0, w - 1), (h - 1, 0), (h // 2, w // 2)]
            for n, (y, x) in enumerate(spots):  # one grid pixel where label 1 wins, at corners and inside
                edits[n, 1, y, x] = 1.0
            edits[5, 1, 0, :] = 0.5  # a whole edge row
            edits[6, 1, 1, 2], edits[6, classes - 1, h - 2, w - 3] = 2.0, 2.0  # far apart: the box spans the slice
            edits[7, 1, h // 3, w // 3] = 0.0  # a tie on the grid: background wins there, not around
            edits[8, 1, h // 2, 3] = -0.0009  # just inside EMPTY_MARGIN below the background (in probability)
            edits[9, 1, h // 2, 3] = -3.0  # far below: no object, nothing resized
            probabilities = torch.softmax(logits, dim=1)
            cases.append((probabilities, shape, [f"L{n}" for n in range(1, classes)]))
    found = 0
    for probabilities, shape, labels in cases:
        got = segmentation.objects_of(probabilities, shape, labels)
        _same_objects(got, _objects_reference(probabilities, shape, labels))
        found += sum(len(one) for one in got)
        assert got[11] == []  # far below everywhere
    assert found > 200


def test_only_the_rectangle_where_a_label_comes_near_is_resized(monkeypatch: pytest.MonkeyPatch) -> None:
    """The saving itself: one small spot on a 128x128 grid resizes a few pixels, not 512x512."""
    from inference.handlers import segmentation

    sizes = []
    resize = segmentation.F.interpolate

    def counted(tensor, *args, **kwargs):  # type: ignore[no-untyped-def]
        out = resize(tensor, *args, **kwargs)
        sizes.append(tuple(out.shape[-2:]))
        return out

    monkeypatch.setattr(segmentation.F, "interpolate", counted)
    logits = torch.full((1, 2, 128, 128), -20.0)
    logits[0, 0] = 0.0
    logits[0, 1, 60:63, 70:72] = 5.0
    (objects,) = segmentation.objects_of(torch.softmax(logits, dim=1), (512, 512), ["L1"])
    assert len(objects) == 1 and objects[0].mask.shape == (512, 512)
    assert sizes == [(7 * 4, 6 * 4)]  # the spot, one grid pixel around it, and one more to trim


def test_a_resized_rectangle_holds_the_whole_slice_resize_values() -> None:
    from inference.handlers.segmentation import _resized_box

    generator = torch.Generator().manual_seed(5)
    for grid, factor in (((16, 16), (4, 4)), ((20, 12), (8, 2)), ((9, 9), (1, 8))):
        probabilities = torch.rand(3, *grid, generator=generator)
        shape = (grid[0] * factor[0], grid[1] * factor[1])
        full = torch.nn.functional.interpolate(probabilities[None], size=shape, mode="bilinear", align_corners=False)
        for box in ((0, grid[0], 0, grid[1]), (0, 3, 2, 5), (4, grid[0], grid[1] - 1, grid[1]), (2, 6, 0, grid[1])):
            part, (y, x) = _resized_box(probabilities, box, factor)
            r0, r1, c0, c1 = box
            assert (y, x) == (r0 * factor[0], c0 * factor[1])
            want = full[0, :, y : r1 * factor[0], x : c1 * factor[1]]
            torch.testing.assert_close(part, want, rtol=1e-6, atol=2e-7)
