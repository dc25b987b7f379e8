"""YOLO (Ultralytics) detection or segmentation: PNG frames, one label file each, and data.yaml. Imports no Django.

Layout::

    images/{split}/{sample key}_{instance:04d}_{frame:04d}.png
    labels/{split}/{same name}.txt       # one line per object; empty for a frame without labels
    data.yaml                            # train, val, test, names (class id -> label name); no path
    index.json                           # per image: where it comes from, window, classifications

Rendering and the ``frames``, ``bit_depth`` and ``window`` options are described in
``datasets.exporters.frames``. Class ids count from 0 over the schema's area labels in index order.

Ultralytics reads a label file as boxes or, when any line is longer, as polygons; a file mixing
the two is misread. So the ``task`` option picks one form for every line:

- ``"detect"`` (default): ``class cx cy w h``, normalized to the image, for every area annotation
  (a polygon's or mask part's bounding box).
- ``"segment"``: ``class x1 y1 x2 y2 ...``, normalized: polygons as drawn, boxes as their four
  corners, masks traced along pixel edges (``datasets.exporters.outlines``), holes kept.

Either way each 8-connected part of a mask is its own object, as a YOLO line holds one outline.
Coordinates move half a pixel from the geometry's (pixel centres) to YOLO's (pixel corners).
Classifications, points and lines have no YOLO form: classifications are in ``index.json``, points
and lines are not exported. ``data.yaml`` has no ``path`` key, on purpose: Ultralytics
(``ultralytics.data.utils.check_det_dataset``) resolves a relative ``path`` against its own
DATASETS_DIR setting, not against the yaml (``path: .`` found the images only when DATASETS_DIR
happened to be the export folder), and without ``path`` it takes the folder holding the yaml. So
``yolo train data=/anywhere/export/data.yaml`` finds ``images/train`` next to the file, from any
working directory. A split with no samples is null; a k-fold version has every image in train,
with its fold in ``index.json``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from annotations.geometry import rasterize
from datasets.exporters.base import (
    SPLITS,
    AnnotationRef,
    Exporter,
    ExportError,
    ExportInput,
    LabelDef,
    Progress,
    register,
    write_json,
)
from datasets.exporters.frames import (
    FRAME_OPTIONS,
    Frame,
    area_annotations,
    check_sample,
    classifications,
    corner_xy,
    image_record,
    png_bytes,
    render_options,
    sample_frames,
    shape_points,
)
from datasets.exporters.outlines import mask_outlines

TASKS = ("detect", "segment")
YAML_HEADER = (
    "# Ultralytics dataset. No 'path' key: Ultralytics then reads train/val/test relative to the\n"
    "# folder holding this file, from any working directory. (A relative 'path' would be read\n"
    "# against Ultralytics' DATASETS_DIR setting instead.)\n"
)


@register
class YoloExporter(Exporter):
    name = "yolo"
    title = "YOLO / Ultralytics (PNG frames with box or polygon label files)"
    options = {
        **FRAME_OPTIONS,
        "task": '"detect" (default): a box per object; "segment": a polygon per object (masks traced).',
    }

    def check_options(self, options: Mapping[str, Any]) -> None:
        render_options(options)
        task = options.get("task", "detect")
        if task not in TASKS:
            raise ExportError(f'the option task must be "detect" or "segment", not {task!r}')

    def export(self, data: ExportInput, out: Path, *, progress: Progress) -> None:
        """Write every sample's frames and label files, then data.yaml and index.json."""
        self.check_options(data.options)
        options = render_options(data.options)
        task = data.options.get("task", "detect")
        classes = {one.name: number for number, one in enumerate(sorted(data.area_labels, key=lambda one: one.index))}
        if len(classes) != len(data.area_labels):
            raise ExportError("YOLO names classes by label name, and two area labels share a name")
        for sample in data.samples:
            check_sample(data, sample)
        index: dict[str, dict[str, Any]] = {}
        for done, sample in enumerate(data.samples, start=1):
            images, labels = out / "images" / sample.split, out / "labels" / sample.split
            images.mkdir(parents=True, exist_ok=True)
            labels.mkdir(parents=True, exist_ok=True)
            for frame in sample_frames(data, sample, options):
                (images / frame.file_name).write_bytes(png_bytes(frame.image))
                lines = [
                    line
                    for one, label in area_annotations(data, sample, frame.sop_uid, frame.frame)
                    for line in yolo_lines(one, label, classes[label.name], frame, task)
                ]
                (labels / frame.file_name).with_suffix(".txt").write_text("".join(f"{line}\n" for line in lines))
                record = image_record(sample, frame)
                record["classifications"] = classifications(data, sample, frame.sop_uid, frame.frame)
                index[f"images/{sample.split}/{frame.file_name}"] = record
            progress(done, len(data.samples))
        splits = {sample.split for sample in data.samples}
        folders = {split: f"images/{split}" if split in splits else None for split in SPLITS}
        document = {
            "train": folders["train"],
            "val": folders["validation"],
            "test": folders["test"],
            "names": {number: name for name, number in classes.items()},
        }
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False)
        (out / "data.yaml").write_text(YAML_HEADER + text, encoding="utf-8")
        write_json(out / "index.json", index)


def yolo_lines(one: AnnotationRef, label: LabelDef, number: int, frame: Frame, task: str) -> list[str]:
    """The label-file lines of one area annotation: one per object, normalized to the frame."""
    if label.kind == "mask":
        pixels = rasterize("mask", dict(one.geometry), frame.rows, frame.columns)
        outlines: list[list[tuple[float, float]]] = [
            [(float(x), float(y)) for x, y in part] for part in mask_outlines(pixels)
        ]
    else:
        outlines = [corner_xy(shape_points(label.kind, one.geometry))]
    width, height = frame.columns, frame.rows
    if task == "detect":
        return [_line(number, _box(outline, width, height)) for outline in outlines]
    return [_line(number, [v for x, y in outline for v in (x / width, y / height)]) for outline in outlines]


def _box(outline: Sequence[tuple[float, float]], width: int, height: int) -> list[float]:
    xs, ys = [x for x, _ in outline], [y for _, y in outline]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    return [(x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width, (y1 - y0) / height]


def _line(number: int, values: Iterable[float]) -> str:
    # Seven decimals: a hundredth of a pixel on a 100,000-pixel side; fixed, so bytes stay equal.
    return " ".join([str(number), *(f"{v:.7f}" for v in values)])
