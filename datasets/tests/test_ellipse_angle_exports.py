"""Ellipses and angles in the exports: an ellipse is a polygon (COCO, YOLO) and its rasterized
pixels (label maps, nnU-Net); an angle is three COCO keypoints and is named as left out elsewhere."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from annotations.ellipse import rasterize_ellipse
from datasets.card import dataset_card, export_warnings
from datasets.exporters import get_exporter
from datasets.exporters.base import ExportInput, label_map
from datasets.tests.factory import make_version
from datasets.tests.test_coco_yolo import coco, yolo_labels
from datasets.tests.test_volume_exports import NNUNET, read

SIZE, SLICES = 32, 5
ELLIPSE = {"center": [16.0, 15.0], "radii": [9.0, 5.0], "rotation": 30.0, "area_mm2": math.pi * 45 * 0.49}
ANGLE = {"points": [[4.0, 4.0], [10.0, 10.0], [4.0, 16.0]], "angle_deg": 90.0}
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _with_ellipse_and_angle(m: dict[str, Any]) -> None:
    m["labels"]["labels"] += [
        {"index": 5, "name": "Cyst", "color": "#ff00ff", "kind": "ellipse", "attributes": []},
        {"index": 6, "name": "Cobb", "color": "#00ffff", "kind": "angle", "attributes": []},
    ]
    for sample in m["samples"]:
        last = sample["instances"][-1]["sop_uid"]  # a slice without any other area label
        common = {"revision": 1, "sop_uid": last, "frame": 0, "attributes": {}, "reader": "bob"}
        sample["annotations"] += [
            {"id": f"{sample['key']}-e", "label": "Cyst", "geometry": ELLIPSE, **common},
            {"id": f"{sample['key']}-a", "label": "Cobb", "geometry": ANGLE, **common},
        ]


@pytest.fixture
def version(tmp_path: Path) -> ExportInput:
    (tmp_path / "src").mkdir()
    data = make_version(tmp_path / "src", patients=4, slices=SLICES, size=SIZE)
    manifest = copy.deepcopy(dict(data.manifest))
    _with_ellipse_and_angle(manifest)
    return ExportInput.from_manifest(manifest, version_id=data.version_id, path_of=data.path_of)


def export(fmt: str, data: ExportInput, out: Path, **options: Any) -> None:
    data = ExportInput.from_manifest(data.manifest, version_id=data.version_id, path_of=data.path_of, options=options)
    get_exporter(fmt).export(data, out, progress=lambda done, total: None)


def test_coco_has_the_ellipse_as_a_polygon_pycocotools_reads(version: ExportInput, tmp_path: Path) -> None:
    export("coco", version, tmp_path / "out", frames="annotated")
    ours = rasterize_ellipse(ELLIPSE, SIZE, SIZE)
    seen = 0
    for split in ("train", "validation", "test"):
        instances = coco(tmp_path / f"out/annotations/instances_{split}.json")
        cats = {c["name"]: c for c in instances.loadCats(instances.getCatIds())}
        assert cats["Cyst"]["kind"] == "ellipse" and "Cobb" not in cats
        for ann in instances.loadAnns(instances.getAnnIds(catIds=[cats["Cyst"]["id"]])):
            seen += 1
            [polygon] = ann["segmentation"]
            assert len(polygon) == 2 * 64
            assert ann["area"] == pytest.approx(math.pi * 9 * 5, rel=0.002)
            x, y, w, h = ann["bbox"]
            assert x + w / 2 == pytest.approx(16.5, abs=0.01) and y + h / 2 == pytest.approx(15.5, abs=0.01)
            assert ann["ellipse"] == {"center": [16.5, 15.5], "radii": [9.0, 5.0], "rotation": 30.0}
            assert ann["area_mm2"] == pytest.approx(ELLIPSE["area_mm2"])
            mask = instances.annToMask(ann).astype(bool)
            # pycocotools fills the 64-gon; only pixels along the outline may differ from ours.
            assert np.count_nonzero(mask & ours) / np.count_nonzero(mask | ours) > 0.9
            assert abs(int(mask.sum()) - int(ours.sum())) <= 6
    assert seen == len(version.samples)


def test_coco_keypoints_hold_the_angle(version: ExportInput, tmp_path: Path) -> None:
    export("coco", version, tmp_path / "out", frames="annotated")
    seen = 0
    for split in ("train", "validation", "test"):
        points = coco(tmp_path / f"out/annotations/keypoints_{split}.json")
        cats = {c["name"]: c for c in points.loadCats(points.getCatIds())}
        assert (cats["Cobb"]["keypoints"], cats["Cobb"]["skeleton"]) == (["arm_a", "vertex", "arm_b"], [[1, 2], [2, 3]])
        for ann in points.loadAnns(points.getAnnIds()):
            seen += 1
            assert ann["keypoints"] == [4.5, 4.5, 2, 10.5, 10.5, 2, 4.5, 16.5, 2]
            assert (ann["num_keypoints"], ann["angle_deg"], ann["area"]) == (3, 90.0, 0.0)
            assert ann["bbox"] == [4.5, 4.5, 6.0, 12.0]
    assert seen == len(version.samples)


def test_yolo_segment_and_box_of_the_ellipse(version: ExportInput, tmp_path: Path) -> None:
    export("yolo", version, tmp_path / "seg", task="segment", frames="annotated")
    export("yolo", version, tmp_path / "det", task="detect", frames="annotated")
    cyst = [one.name for one in version.area_labels].index("Cyst")
    outlines = [v for path in (tmp_path / "seg").rglob("labels/**/*.txt") for n, v in yolo_labels(path) if n == cyst]
    boxes = [v for path in (tmp_path / "det").rglob("labels/**/*.txt") for n, v in yolo_labels(path) if n == cyst]
    assert len(outlines) == len(boxes) == len(version.samples)
    half_w = math.hypot(9 * math.cos(math.radians(30)), 5 * math.sin(math.radians(30)))
    for outline, box in zip(outlines, boxes, strict=True):
        assert len(outline) == 128 and all(0 <= v <= 1 for v in outline)
        assert box[0] == pytest.approx(16.5 / SIZE, abs=1e-4) and box[1] == pytest.approx(15.5 / SIZE, abs=1e-4)
        assert box[2] == pytest.approx(2 * half_w / SIZE, rel=0.01)


def test_label_maps_and_nnunet_hold_the_rasterized_ellipse(version: ExportInput, tmp_path: Path) -> None:
    sample = version.samples[0]
    last = sample.instances[-1].sop_uid
    frame = label_map(sample.annotations_on(last, 0), version.labels, SIZE, SIZE, sample=sample.key)
    np.testing.assert_array_equal(frame == 5, rasterize_ellipse(ELLIPSE, SIZE, SIZE))
    assert not (frame == 6).any()  # an angle covers no pixels
    export("nnunet", version, tmp_path / "out")
    classes = json.loads((tmp_path / "out" / NNUNET / "dataset.json").read_text())["labels"]
    assert "Cobb" not in classes
    labels = sorted((tmp_path / "out" / NNUNET).glob("labels*/case_*.nii.gz"))
    assert len(labels) == len(version.samples)
    for path in labels:
        volume, _ = read(path)
        assert np.count_nonzero(volume == classes["Cyst"]) == np.count_nonzero(rasterize_ellipse(ELLIPSE, SIZE, SIZE))


def test_card_and_export_form_say_where_the_angle_goes(version: ExportInput) -> None:
    manifest = {
        **version.manifest,
        "project": {"name": "p"},
        "dataset": {"name": "d"},
        "deidentification": {"profile": "Basic", "methods": []},
        "augmentation": {},
    }
    assert "Angle labels (Cobb) are COCO keypoints" in dataset_card(manifest, version_id="0" * 64, export_format="coco")
    assert "Left out of this yolo export: Cobb" in dataset_card(manifest, version_id="0" * 64, export_format="yolo")
    warnings = export_warnings(version.manifest["labels"]["labels"], {"train": {"labels": {"Cobb": 3, "Cyst": 3}}})
    assert "3 Cobb (angle)" in warnings["yolo"] and "Cyst" not in warnings["yolo"]
    assert "coco" not in warnings
