"""The uncertainty map per proposal: written by the pre-annotation run, listed by the proposals API.

A tiny UNet trained here (tests/test_preannotate.py's fixtures) and a confident stand-in handler
whose outputs are known. Cast (conftest.py): alice admin, bob radiologist, dave ML engineer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from annotations import geometry as geo
from annotations import services
from inference import runs
from inference.models import Proposal
from tests.test_preannotate import SIZE, trained_weights, world  # noqa: F401 - fixtures used by name

torch = pytest.importorskip("torch")


def _run(made: dict[str, Any], *series: Any, uncertainty: bool = True) -> list[Proposal]:
    run = runs.inference_run_create(
        project=made["model"].project,
        model=made["model"],
        series_ids=[str(s.pk) for s in series],
        user=None,
        enqueue=False,
        uncertainty=uncertainty,
    )
    done = runs.inference_run_execute(run_id=str(run.pk))
    assert done is not None and done.status == "done"
    return list(Proposal.objects.filter(run=run))


def test_every_proposal_of_a_run_has_its_uncertainty_map(world: dict[str, Any]) -> None:  # noqa: F811
    proposals = _run(world, world["fresh"], world["other"])
    assert proposals
    for p in proposals:
        u = p.uncertainty
        assert u is not None and u["method"] == "tta_entropy" and u["threshold"] == 0.5
        assert (u["rows"], u["columns"]) == (SIZE, SIZE)
        assert 0.0 <= u["mean"] <= u["max"] <= 1.0
        assert geo.validate_geometry("mask", {"rows": SIZE, "columns": SIZE, "rle": u["rle"]})
        geo.check_bounds("mask", {"rows": SIZE, "columns": SIZE, "rle": u["rle"]}, rows=SIZE, columns=SIZE)
        # Only the proposal's neighbourhood: its bounding box dilated by a few pixels.
        uncertain = geo.rle_decode(u["rle"], SIZE, SIZE)
        mask = geo.rle_decode(p.geometry["rle"], SIZE, SIZE)
        ys, xs = np.nonzero(mask)
        box = np.zeros_like(mask)
        box[max(ys.min() - 4, 0) : ys.max() + 5, max(xs.min() - 4, 0) : xs.max() + 5] = True
        assert not (uncertain & ~box).any()
    # A few epochs on disks leave the model unsure at their borders: some map is not empty.
    assert any(p.uncertainty["rle"] for p in proposals)


class Confident:
    """A stand-in segmentation handler sure of every pixel: the bright disk is foreground."""

    def __init__(self, weights: bytes, config: dict[str, Any]) -> None:
        self.labels = list(config["labels"])
        self.device = torch.device("cpu")

    def preprocess(self, images: list[np.ndarray]) -> Any:
        return torch.as_tensor(np.stack(images), dtype=torch.float32)[:, None]

    def infer(self, batch: Any) -> Any:
        fg = (batch > -400).float() * (1 - 2e-6) + 1e-6
        return torch.cat([1 - fg, fg], dim=1)

    def postprocess(self, probabilities: Any, shape: tuple[int, int]) -> list[list[Any]]:
        from inference.handlers.base import ObjectPrediction

        masks = (probabilities[:, 1] > 0.5).numpy()
        return [[ObjectPrediction(label=self.labels[0], mask=m, score=0.99)] for m in masks]

    def predict_with_uncertainty(self, images: list[np.ndarray], *, batch_size: int = 16) -> list[Any]:
        from inference.handlers.uncertainty import predict_with_entropy

        return predict_with_entropy(self, images, batch_size=batch_size)


def test_a_confident_model_gives_empty_maps(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    import inference.handlers

    monkeypatch.setattr(inference.handlers, "handler_class", lambda kind: Confident)
    proposals = _run(world, world["fresh"])
    assert len(proposals) == 3  # one disk per slice
    for p in proposals:
        assert p.uncertainty["rle"] == [] and p.uncertainty["max"] < 0.01 and p.uncertainty["mean"] < 0.01


def test_the_proposals_api_lists_the_uncertainty(
    world: dict[str, Any],  # noqa: F811
    api_as: Any,
    cast: dict[str, Any],
) -> None:
    proposals = _run(world, world["fresh"])
    (read,) = services.assignment_create(series=world["fresh"], readers=[cast["bob"]], user=cast["alice"])
    listed = api_as("bob").get(f"/api/assignments/{read.pk}/proposals/").json()["results"]
    by_id = {p["id"]: p for p in listed}
    assert set(by_id) == {str(p.pk) for p in proposals}
    for p in proposals:
        got = by_id[str(p.pk)]["uncertainty"]
        assert got == {k: p.uncertainty[k] for k in ("rows", "columns", "rle", "mean", "max", "method", "threshold")}


def test_a_run_can_leave_the_maps_out(world: dict[str, Any]) -> None:  # noqa: F811
    """Three fewer passes of the network per slice, for throughput: the proposals are the same."""
    with_maps = _run(world, world["fresh"])
    without = _run(world, world["fresh"], uncertainty=False)
    assert without and all(p.uncertainty is None for p in without)
    assert sorted((p.sop_instance_uid, p.score) for p in without) == sorted(
        (p.sop_instance_uid, p.score) for p in with_maps
    )
