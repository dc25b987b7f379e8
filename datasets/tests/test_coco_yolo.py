"""The coco and yolo exports: read back with pycocotools and PyYAML, equal to the ground truth, byte-stable."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import yaml
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from annotations.geometry import rasterize_polygon
from datasets.exporters import get_exporter
from datasets.exporters.base import ExportError, ExportInput, GeometryMismatch, Sample
from datasets.exporters.coco import CocoExporter
from datasets.exporters.outlines import mask_outlines
from datasets.exporters.yolo import YoloExporter
from datasets.tests.factory import lesion_mask, make_version

SIZE, SLICES = 32, 5
NAMES = {0: "Lesion", 1: "Nodule box", 2: "Organ"}
# pycocotools' annToMask trips numpy 2's copy-keyword deprecation inside pycocotools; nothing of ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def export(data: ExportInput, out: Path, fmt: str = "coco", **options: Any) -> list[tuple[int, int]]:
    calls: list[tuple[int, int]] = []
    exporter = CocoExporter() if fmt == "coco" else YoloExporter()
    data = ExportInput.from_manifest(data.manifest, version_id=data.version_id, path_of=data.path_of, options=options)
    exporter.export(data, out, progress=lambda done, total: calls.append((done, total)))
    return calls


def edited(data: ExportInput, edit: Any) -> ExportInput:
    """The same version with its manifest changed by ``edit(manifest)``; files stay where they are."""
    manifest = copy.deepcopy(dict(data.manifest))
    edit(manifest)
    return ExportInput.from_manifest(manifest, version_id=data.version_id, path_of=data.path_of)


def centre_of(sample: Sample) -> tuple[float, float]:
    """The factory's lesion centre for the sample's patient (PSEUDO-000p)."""
    p = int(sample.patient.rsplit("-", 1)[1])
    return (0.35 + 0.1 * (p % 3), 0.45 + 0.05 * (p % 2))


def digests(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def coco(path: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        return COCO(str(path))


def yolo_labels(path: Path) -> list[tuple[int, list[float]]]:
    return [(int(line.split()[0]), [float(v) for v in line.split()[1:]]) for line in path.read_text().splitlines()]


def box(geometry: dict[str, float]) -> list[float]:
    """The factory's box in COCO's corner coordinates, as [x, y, w, h]."""
    return [
        geometry["x0"] + 0.5,
        geometry["y0"] + 0.5,
        geometry["x1"] - geometry["x0"],
        geometry["y1"] - geometry["y0"],
    ]


@pytest.fixture
def version(tmp_path: Path) -> ExportInput:
    (tmp_path / "src").mkdir()
    return make_version(tmp_path / "src", patients=4, slices=SLICES, size=SIZE)


def test_they_are_registered() -> None:
    assert isinstance(get_exporter("coco"), CocoExporter)
    assert isinstance(get_exporter("yolo"), YoloExporter)


# --- COCO -----------------------------------------------------------------------------------------


def test_coco_layout_images_and_metadata(version: ExportInput, tmp_path: Path) -> None:
    out = tmp_path / "out"
    calls = export(version, out)
    assert calls == [(n, len(version.samples)) for n in range(1, len(version.samples) + 1)]
    splits = {s.split for s in version.samples}
    assert splits == {"train", "validation", "test"}
    assert {p.name for p in (out / "annotations").iterdir()} == {f"instances_{s}.json" for s in splits}
    ids: set[int] = set()
    for split in splits:
        data = coco(out / "annotations" / f"instances_{split}.json")
        assert [(c["id"], c["name"]) for c in data.loadCats(data.getCatIds())] == [
            (1, "Lesion"),
            (2, "Nodule box"),
            (3, "Organ"),
        ]
        samples = [s for s in version.samples if s.split == split]
        images = data.loadImgs(data.getImgIds())
        assert len(images) == sum(len(s.instances) for s in samples)  # every frame: negatives included
        assert not ids & {i["id"] for i in images}
        ids |= {i["id"] for i in images}
        by_key = {s.key: s for s in samples}
        for image in images:
            sample = by_key[image["sample"]]
            instance = sample.instances[image["instance"]]
            assert image["file_name"] == f"{sample.key}_{image['instance']:04d}_0000.png"
            assert (image["patient"], image["series_uid"], image["split"]) == (sample.patient, sample.key, split)
            assert (image["sop_uid"], image["frame"], image["pixel_spacing"]) == (instance.sop_uid, 0, [0.7, 0.7])
            assert (image["width"], image["height"]) == (SIZE, SIZE)
            assert [(c["label"], c["scope"]) for c in image["classifications"]] == [("Normal", "series")]
            png = Image.open(out / "images" / split / image["file_name"])
            assert (png.mode, png.size) == ("L", (SIZE, SIZE))
        assert all(a["iscrowd"] == 0 for a in data.loadAnns(data.getAnnIds()))


def test_coco_shapes_match_the_ground_truth(version: ExportInput, tmp_path: Path) -> None:
    out = tmp_path / "out"
    export(version, out)
    seen = {"Lesion": 0, "Nodule box": 0, "Organ": 0}
    for split in ("train", "validation", "test"):
        data = coco(out / "annotations" / f"instances_{split}.json")
        names = {c["id"]: c["name"] for c in data.loadCats(data.getCatIds())}
        samples = {s.key: s for s in version.samples}
        frozen = {a["id"]: a for s in version.manifest["samples"] for a in s["annotations"]}
        for ann in data.loadAnns(data.getAnnIds()):
            image = data.loadImgs(ann["image_id"])[0]
            sample, k = samples[image["sample"]], image["instance"]
            name, geometry = names[ann["category_id"]], frozen[ann["source"]["id"]]["geometry"]
            seen[name] += 1
            mask = data.annToMask(ann).astype(bool)
            if name == "Lesion":
                truth = lesion_mask(SIZE, k, SLICES, centre_of(sample))
                assert np.array_equal(mask, truth)
                assert ann["area"] == truth.sum() and isinstance(ann["segmentation"]["counts"], str)
                ys, xs = np.nonzero(truth)
                assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            elif name == "Nodule box":
                assert k == SLICES // 2 and ann["bbox"] == box(geometry)
                assert ann["area"] == ann["bbox"][2] * ann["bbox"][3]
            else:
                assert k == 0 and ann["area"] == 72  # the diamond's half-diagonals are 6 pixels
                assert ann["segmentation"] == [[v + 0.5 for point in geometry["points"] for v in point]]
                ours = rasterize_polygon(geometry["points"], SIZE, SIZE)
                # Only pixels whose centres lie on the outline may fall the other way in pycocotools.
                ys, xs = np.nonzero(mask ^ ours)
                assert mask.sum() == ours.sum() and np.all(abs(xs - SIZE / 2) + abs(ys - SIZE / 2) == 6)
    assert seen == {"Lesion": 4 * 3, "Nodule box": 4, "Organ": 4}  # lesions on the middle three slices


def _with_points_and_lines(m: dict[str, Any]) -> None:
    m["labels"]["labels"] += [
        {"index": 5, "name": "Landmark", "color": "#ff00ff", "kind": "point", "attributes": []},
        {"index": 6, "name": "Diameter", "color": "#00ffff", "kind": "line", "attributes": []},
    ]
    for sample in m["samples"]:
        last = sample["instances"][-1]["sop_uid"]  # a slice without any area label
        sample["annotations"] += [
            {"id": f"{sample['key']}-k", "revision": 1, "label": "Landmark", "sop_uid": last, "frame": 0,
             "geometry": {"x": 3.0, "y": 4.0}, "attributes": {}, "reader": "bob"},
            {"id": f"{sample['key']}-l", "revision": 1, "label": "Diameter", "sop_uid": last, "frame": 0,
             "geometry": {"points": [[2.0, 2.0], [10.0, 8.0]], "length_mm": 7.0}, "attributes": {}, "reader": "bob"},
        ]  # fmt: skip


def test_coco_writes_points_and_lines_as_keypoints(version: ExportInput, tmp_path: Path) -> None:
    data = edited(version, _with_points_and_lines)
    export(data, tmp_path / "out", frames="annotated")
    seen = 0
    for split in ("train", "validation", "test"):
        instances = coco(tmp_path / f"out/annotations/instances_{split}.json")
        assert {c["name"] for c in instances.loadCats(instances.getCatIds())} == {"Lesion", "Nodule box", "Organ"}
        points = coco(tmp_path / f"out/annotations/keypoints_{split}.json")
        cats = {c["name"]: c for c in points.loadCats(points.getCatIds())}
        assert (cats["Landmark"]["id"], cats["Landmark"]["keypoints"], cats["Landmark"]["skeleton"]) == (
            5,
            ["point"],
            [],
        )
        assert (cats["Diameter"]["keypoints"], cats["Diameter"]["skeleton"]) == (["start", "end"], [[1, 2]])
        assert points.getImgIds() == instances.getImgIds()  # the same images, the last slices included
        for ann in points.loadAnns(points.getAnnIds()):
            seen += 1
            image = points.loadImgs(ann["image_id"])[0]
            assert image["instance"] == SLICES - 1
            if ann["category_id"] == 5:
                assert (ann["keypoints"], ann["num_keypoints"]) == ([3.5, 4.5, 2], 1)
            else:
                assert (ann["keypoints"], ann["num_keypoints"]) == ([2.5, 2.5, 2, 10.5, 8.5, 2], 2)
                assert ann["bbox"] == [2.5, 2.5, 8.0, 6.0] and ann["length_mm"] == 7.0
    assert seen == 2 * len(version.samples)


def test_the_card_says_where_points_and_lines_went(version: ExportInput) -> None:
    from datasets.card import dataset_card

    data = edited(version, _with_points_and_lines)
    manifest = {
        **data.manifest,
        "project": {"name": "p"},
        "dataset": {"name": "d"},
        "deidentification": {"profile": "Basic", "methods": []},
        "augmentation": {},
    }
    coco_card = dataset_card(manifest, version_id="0" * 64, export_format="coco")
    assert "Point and line labels (Landmark, Diameter) are COCO keypoints" in coco_card
    yolo_card = dataset_card(manifest, version_id="0" * 64, export_format="yolo")
    assert "Left out of this yolo export: Landmark, Diameter" in yolo_card


def test_coco_files_evaluate_as_perfect_against_themselves(version: ExportInput, tmp_path: Path) -> None:
    out = tmp_path / "out"
    export(version, out)
    truth = coco(out / "annotations" / "instances_train.json")
    for kind in ("bbox", "segm"):
        results = [
            {"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0}
            | ({"bbox": a["bbox"]} if kind == "bbox" else {"segmentation": truth.annToRLE(a)})
            for a in truth.loadAnns(truth.getAnnIds())
        ]
        with contextlib.redirect_stdout(io.StringIO()):
            evaluation = COCOeval(truth, truth.loadRes(results), kind)
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        assert evaluation.stats[0] == pytest.approx(1.0)


def test_eight_bit_windows_and_sixteen_bit_values(version: ExportInput, tmp_path: Path) -> None:
    sample = version.samples[0]
    k = SLICES // 2
    name = f"images/{sample.split}/{sample.key}_{k:04d}_0000.png"
    truth = lesion_mask(SIZE, k, SLICES, centre_of(sample))
    export(version, tmp_path / "file")
    pixels = np.asarray(Image.open(tmp_path / "file" / name))
    # The file's window is 40/400: lesion (60 HU) -> ((60 - 39.5) / 399 + 0.5) * 255 = 140.6; lung (-850) -> 0.
    assert set(pixels[truth].tolist()) == {141} and set(pixels[~truth].tolist()) == {0}

    export(version, tmp_path / "minmax", window="minmax")
    pixels = np.asarray(Image.open(tmp_path / "minmax" / name))
    assert pixels.min() == 0 and pixels.max() == 255 and len(np.unique(pixels)) > 10

    export(version, tmp_path / "wide", bit_depth=16)
    png = Image.open(tmp_path / "wide" / name)
    ds = pydicom.dcmread(version.path_of(sample.instances[k].sop_uid))
    assert png.mode.startswith("I;16")
    values = np.asarray(png).astype(np.int64)
    assert np.array_equal(values, ds.pixel_array.astype(np.int64) + 32768)  # stored values, signed -> unsigned
    image = next(
        i
        for i in json.loads((tmp_path / f"wide/annotations/instances_{sample.split}.json").read_text())["images"]
        if i["file_name"] == name.rsplit("/", 1)[1]
    )
    assert image["window"] is None
    hu = image["rescale"]["slope"] * values + image["rescale"]["intercept"]
    assert np.allclose(hu, ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept))


def test_annotated_frames_only(version: ExportInput, tmp_path: Path) -> None:
    export(version, tmp_path / "all")
    export(version, tmp_path / "some", frames="annotated")
    everything = {p.name for p in (tmp_path / "all/images").rglob("*.png")}
    annotated = {p.name for p in (tmp_path / "some/images").rglob("*.png")}
    assert len(everything) == len(version.samples) * SLICES
    drawn = {
        f"{s.key}_{k:04d}_0000.png"
        for s in version.samples
        for k, i in enumerate(s.instances)
        if any(a.label != "Normal" for a in s.annotations_on(i.sop_uid, 0))
    }
    assert annotated == drawn and drawn < everything  # the last slice of each series has no area label


def test_a_colour_image_stays_rgb(version: ExportInput, tmp_path: Path) -> None:
    sample = version.samples[0]
    path = version.path_of(sample.instances[1].sop_uid)
    ds = pydicom.dcmread(path)
    rgb = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 2] = 200, np.arange(SIZE, dtype=np.uint8)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    for keyword in ("RescaleIntercept", "RescaleSlope", "WindowCenter", "WindowWidth"):
        delattr(ds, keyword)
    ds.PixelData = rgb.tobytes()
    ds.save_as(path)
    export(version, tmp_path / "out", bit_depth=16)
    png = Image.open(tmp_path / "out/images" / sample.split / f"{sample.key}_0001_0000.png")
    assert png.mode == "RGB" and np.array_equal(np.asarray(png), rgb)


# --- YOLO -----------------------------------------------------------------------------------------


def test_yolo_data_yaml_and_boxes(version: ExportInput, tmp_path: Path) -> None:
    out = tmp_path / "out"
    calls = export(version, out, "yolo")
    assert calls[-1] == (len(version.samples), len(version.samples))
    document = yaml.safe_load((out / "data.yaml").read_text())
    assert document == {
        "train": "images/train",
        "val": "images/validation",
        "test": "images/test",
        "names": NAMES,
    }
    index = json.loads((out / "index.json").read_text())
    assert len(index) == len(version.samples) * SLICES
    for sample in version.samples:
        frozen = {a["id"]: a for s in version.manifest["samples"] if s["key"] == sample.key for a in s["annotations"]}
        for k in range(SLICES):
            name = f"{sample.key}_{k:04d}_0000"
            assert (out / f"images/{sample.split}/{name}.png").is_file()
            assert index[f"images/{sample.split}/{name}.png"]["patient"] == sample.patient
            expected = []  # (class, [x, y, w, h]) in pixels, corner coordinates
            if f"{sample.key}-m{k}" in frozen:
                ys, xs = np.nonzero(lesion_mask(SIZE, k, SLICES, centre_of(sample)))
                expected.append((0, [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]))
            if k == SLICES // 2:
                expected.append((1, box(frozen[f"{sample.key}-b"]["geometry"])))
            if k == 0:
                xs, ys = np.array(frozen[f"{sample.key}-p"]["geometry"]["points"]).T + 0.5
                expected.append((2, [xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()]))
            normalized = [
                (n, [(x + w / 2) / SIZE, (y + h / 2) / SIZE, w / SIZE, h / SIZE]) for n, (x, y, w, h) in expected
            ]
            found = yolo_labels(out / f"labels/{sample.split}/{name}.txt")
            assert sorted(n for n, _ in found) == sorted(n for n, _ in expected)
            for number, values in normalized:
                assert any(n == number and np.allclose(v, values, rtol=0, atol=1e-6) for n, v in found)


def ultralytics_dataset_root(yaml_path: Path, datasets_dir: Path) -> Path:
    """Where Ultralytics' check_det_dataset looks for the splits (ultralytics/data/utils.py):
    ``path`` if the yaml has one, else the yaml's folder; a relative one under DATASETS_DIR
    unless it exists from the working directory."""
    document = yaml.safe_load(yaml_path.read_text())
    root = Path(document.get("path") or yaml_path.parent)
    if not root.is_absolute() and not root.exists():
        root = (datasets_dir / root).resolve()
    return root


def test_yolo_data_yaml_finds_the_images_from_anywhere(
    version: ExportInput, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    export(version, out, "yolo")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for given in (out / "data.yaml", Path("../out/data.yaml")):
        root = ultralytics_dataset_root(given, tmp_path / "ultralytics-datasets")
        assert (root / "images/train").resolve() == (out / "images/train").resolve()


def test_ultralytics_reads_the_data_yaml_from_another_folder(
    version: ExportInput, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    utils = pytest.importorskip("ultralytics.data.utils", reason="ultralytics is not installed in .venv")
    out = tmp_path / "out"
    export(version, out, "yolo")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    data = utils.check_det_dataset(str(out / "data.yaml"), autodownload=False)
    assert Path(data["train"]) == (out / "images/train").resolve()
    assert Path(data["val"]) == (out / "images/validation").resolve()
    assert data["names"] == NAMES


def test_yolo_segment_outlines_give_back_the_pixels(version: ExportInput, tmp_path: Path) -> None:
    out = tmp_path / "out"
    export(version, out, "yolo", task="segment")
    for sample in version.samples:
        frozen = {a["id"]: a for s in version.manifest["samples"] if s["key"] == sample.key for a in s["annotations"]}
        for k in range(SLICES):
            found = yolo_labels(out / f"labels/{sample.split}/{sample.key}_{k:04d}_0000.txt")
            assert all(len(values) >= 6 and len(values) % 2 == 0 for _, values in found)  # no box lines mixed in
            truth = lesion_mask(SIZE, k, SLICES, centre_of(sample))
            drawn = np.zeros((SIZE, SIZE), dtype=bool)
            for number, values in found:
                points = (np.array(values).reshape(-1, 2) * SIZE - 0.5).tolist()
                if number == 0:
                    drawn |= rasterize_polygon(points, SIZE, SIZE)
                elif number == 2:
                    assert np.allclose(points, frozen[f"{sample.key}-p"]["geometry"]["points"], atol=1e-5)
                else:
                    geometry = frozen[f"{sample.key}-b"]["geometry"]
                    corners = [
                        [geometry[x], geometry[y]] for x, y in (("x0", "y0"), ("x1", "y0"), ("x1", "y1"), ("x0", "y1"))
                    ]
                    assert np.allclose(points, corners, atol=1e-5)
            assert np.array_equal(drawn, truth)


def test_mask_outlines_are_exact_one_per_part_with_holes() -> None:
    ring = np.ones((5, 5), dtype=bool)
    ring[2, 2] = False
    diagonal = np.eye(3, dtype=bool)  # 8-connected: one part
    two = np.zeros((4, 6), dtype=bool)
    two[1:3, 0:2] = two[1:3, 4:6] = True
    for mask, parts in ((ring, 1), (diagonal, 1), (two, 2)):
        assert len(mask_outlines(mask)) == parts
    rng = np.random.default_rng(3)
    for mask in [ring, diagonal, two, *(rng.random((9, 11)) < p for p in np.linspace(0.1, 0.9, 60))]:
        drawn = np.zeros(mask.shape, dtype=bool)
        for outline in mask_outlines(mask):
            part = rasterize_polygon([(x - 0.5, y - 0.5) for x, y in outline], *mask.shape)
            assert not (drawn & part).any()  # parts do not overlap
            drawn |= part
        assert np.array_equal(drawn, mask)


# --- both -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "options"), [("coco", {}), ("coco", {"bit_depth": 16}), ("yolo", {"task": "segment"})])
def test_export_is_byte_for_byte_deterministic(
    version: ExportInput, tmp_path: Path, fmt: str, options: dict[str, Any]
) -> None:
    export(version, tmp_path / "one", fmt, **options)
    export(version, tmp_path / "two", fmt, **options)
    assert digests(tmp_path / "one") == digests(tmp_path / "two")


@pytest.mark.parametrize("fmt", ["coco", "yolo"])
def test_no_patient_in_two_splits_and_no_patient_in_file_names(version: ExportInput, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "out"
    export(version, out, fmt)
    if fmt == "coco":
        images = [i for p in (out / "annotations").iterdir() for i in json.loads(p.read_text())["images"]]
    else:
        images = list(json.loads((out / "index.json").read_text()).values())
    splits_of: dict[str, set[str]] = {}
    for image in images:
        splits_of.setdefault(image["patient"], set()).add(image["split"])
    assert len(splits_of) == 4 and all(len(splits) == 1 for splits in splits_of.values())
    assert not any("PSEUDO" in path for path in digests(out))


def _on_missing_image(m: dict[str, Any]) -> None:
    m["samples"][1]["annotations"][0]["sop_uid"] = "1.2.3.4"


def _on_missing_frame(m: dict[str, Any]) -> None:
    m["samples"][1]["annotations"][0]["frame"] = 1


def _box_outside(m: dict[str, Any]) -> None:
    next(a for a in m["samples"][1]["annotations"] if a["label"] == "Nodule box")["geometry"]["x1"] = SIZE - 0.4


def _polygon_outside(m: dict[str, Any]) -> None:
    next(a for a in m["samples"][1]["annotations"] if a["label"] == "Organ")["geometry"]["points"][0] = [-1.0, 3.0]


def _mask_of_other_size(m: dict[str, Any]) -> None:
    next(a for a in m["samples"][1]["annotations"] if a["label"] == "Lesion")["geometry"]["rows"] = SIZE + 1


@pytest.mark.parametrize("fmt", ["coco", "yolo"])
@pytest.mark.parametrize(
    "edit", [_on_missing_image, _on_missing_frame, _box_outside, _polygon_outside, _mask_of_other_size]
)
def test_a_label_off_its_image_fails_naming_the_sample(
    version: ExportInput, tmp_path: Path, fmt: str, edit: Any
) -> None:
    with pytest.raises(GeometryMismatch) as caught:
        export(edited(version, edit), tmp_path / "out", fmt)
    assert caught.value.sample == version.samples[1].key
    assert not (tmp_path / "out").exists()  # every sample is checked before anything is written


def test_a_shape_without_area_fails(version: ExportInput, tmp_path: Path) -> None:
    def flat(m: dict[str, Any]) -> None:
        geometry = next(a for a in m["samples"][2]["annotations"] if a["label"] == "Nodule box")["geometry"]
        geometry["x1"] = geometry["x0"]

    with pytest.raises(ExportError) as caught:
        export(edited(version, flat), tmp_path / "out", "yolo")
    assert caught.value.sample == version.samples[2].key and "no area" in str(caught.value)


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("coco", {"bit_depth": 12}),
        ("coco", {"bit_depth": True}),
        ("coco", {"window": "lung"}),
        ("coco", {"frames": "some"}),
        ("yolo", {"task": "classify"}),
    ],
)
def test_bad_options_fail(version: ExportInput, tmp_path: Path, fmt: str, options: dict[str, Any]) -> None:
    with pytest.raises(ExportError, match="the option"):
        export(version, tmp_path / "out", fmt, **options)


def test_a_k_fold_version_trains_on_everything_and_records_folds(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    version = make_version(tmp_path / "src", patients=3, slices=3, size=SIZE, folds=3)
    export(version, tmp_path / "out", "yolo")
    document = yaml.safe_load((tmp_path / "out/data.yaml").read_text())
    assert (document["train"], document["val"], document["test"]) == ("images/train", None, None)
    index = json.loads((tmp_path / "out/index.json").read_text())
    assert {(i["split"], i["fold"]) for i in index.values()} == {("train", 0), ("train", 1), ("train", 2)}
