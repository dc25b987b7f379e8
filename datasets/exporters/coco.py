"""COCO instances: one PNG per frame and one annotation file per split, as pycocotools reads them. Imports no Django.

Layout::

    images/{split}/{sample key}_{instance:04d}_{frame:04d}.png
    annotations/instances_{split}.json       # for each split that has samples: train, validation, test

Rendering and the ``frames``, ``bit_depth`` and ``window`` options are described in
``datasets.exporters.frames``. Image and annotation ids count from 1 over the whole export, so the
split files can be merged without clashes.

- Categories are the schema's area labels; a category's id is the label's index (0 stays background).
- Boxes give ``bbox`` and a four-corner polygon; polygons and freehand shapes give one polygon;
  ``area`` is the shape's own (shoelace) area. Masks give compressed RLE (``counts`` a string) with
  ``area`` the pixel count and ``bbox`` the pixels' box. Coordinates move half a pixel from the
  geometry's (pixel centres) to COCO's (pixel corners), so ``annToMask`` gives back the drawn pixels.
- ``iscrowd`` is 0 everywhere, RLE included: each annotation is one object, and COCOeval ignores
  crowd regions, which would drop mask-labelled lesions from evaluation. pycocotools, Detectron2
  and MMDetection all load compressed RLE with ``iscrowd`` 0.
- Each image record carries where it comes from (sample key, patient pseudonym, study, series and
  SOP UIDs, instance, frame, split, fold, pixel spacing) and its classifications: the frame's image
  classifications and the sample's series classifications.
- Ellipses are polygons of 64 vertices on the ellipse (``annotations.ellipse.ellipse_points``),
  with ``area`` that polygon's and ``bbox`` its box; the annotation also carries the ``ellipse``
  as drawn (``center``, ``radii``, ``rotation``, in pixel-corner coordinates) and ``area_mm2``.
- Points, lines and angles are COCO keypoints, in ``annotations/keypoints_{split}.json`` beside
  the instances file (as COCO keeps person keypoints apart from instances, so detection and
  segmentation evaluation never meet an object without a shape). The file has the same images;
  each point, line or angle label is a category with ``keypoints`` (``["point"]``,
  ``["start", "end"]`` with ``skeleton`` ``[[1, 2]]``, or ``["arm_a", "vertex", "arm_b"]`` with
  ``skeleton`` ``[[1, 2], [2, 3]]``), and each annotation has ``keypoints`` as ``[x, y, v, ...]``
  in pixel-corner coordinates with visibility ``v`` 2 (labeled and visible), ``num_keypoints``,
  ``bbox`` around its points and ``area`` 0; a line also carries ``length_mm``, an angle
  ``angle_deg``. The file is written only when the schema has point, line or angle labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask

from annotations.geometry import POINT_KINDS, rasterize
from datasets.exporters.base import (
    SPLITS,
    AnnotationRef,
    Exporter,
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
    polygon_area,
    render_options,
    sample_frames,
    shape_points,
)


@register
class CocoExporter(Exporter):
    name = "coco"
    title = "COCO instances (PNG frames with boxes, polygons and RLE masks; points, lines and angles as keypoints)"
    options = FRAME_OPTIONS

    def check_options(self, options: Mapping[str, Any]) -> None:
        render_options(options)

    def export(self, data: ExportInput, out: Path, *, progress: Progress) -> None:
        """Write every sample's frames and the split files; GeometryMismatch or ExportError name the sample."""
        options = render_options(data.options)
        for sample in data.samples:
            check_sample(data, sample)  # before any file: a bad sample fails the export, not half of it
        images: dict[str, list[dict[str, Any]]] = {}
        annotations: dict[str, list[dict[str, Any]]] = {}
        keypoints: dict[str, list[dict[str, Any]]] = {}
        keypoint_labels = {one.name: one for one in data.labels if one.kind in KEYPOINT_KINDS}
        image_id = annotation_id = 0
        for done, sample in enumerate(data.samples, start=1):
            folder = out / "images" / sample.split
            folder.mkdir(parents=True, exist_ok=True)
            for frame in sample_frames(data, sample, options, also=KEYPOINT_KINDS):
                image_id += 1
                (folder / frame.file_name).write_bytes(png_bytes(frame.image))
                record = image_record(sample, frame)
                record["classifications"] = classifications(data, sample, frame.sop_uid, frame.frame)
                images.setdefault(sample.split, []).append({"id": image_id, **record})
                for one, label in area_annotations(data, sample, frame.sop_uid, frame.frame):
                    annotation_id += 1
                    annotations.setdefault(sample.split, []).append(
                        {"id": annotation_id, "image_id": image_id, **coco_shape(one, label, frame)}
                    )
                for one in sorted(sample.annotations_on(frame.sop_uid, frame.frame), key=lambda a: a.id):
                    if one.label in keypoint_labels:
                        annotation_id += 1
                        keypoints.setdefault(sample.split, []).append(
                            {
                                "id": annotation_id,
                                "image_id": image_id,
                                **coco_keypoints(one, keypoint_labels[one.label]),
                            }
                        )
            progress(done, len(data.samples))
        categories = [
            {"id": one.index, "name": one.name, "supercategory": "", "kind": one.kind, "color": one.color}
            for one in sorted(data.area_labels, key=lambda one: one.index)
        ]
        for split in SPLITS:
            if split not in images:
                continue
            write_json(
                out / "annotations" / f"instances_{split}.json",
                {
                    "info": {
                        "description": f"{data.name}: Workbench dataset version {data.version_id}, {split} split",
                        "version": data.version_id,
                    },
                    "licenses": [],
                    "categories": categories,
                    "images": images[split],
                    "annotations": annotations.get(split, []),
                },
            )
            if keypoint_labels:
                write_json(
                    out / "annotations" / f"keypoints_{split}.json",
                    {
                        "info": {
                            "description": f"{data.name}: Workbench dataset version {data.version_id}, "
                            f"{split} split, points and lines",
                            "version": data.version_id,
                        },
                        "licenses": [],
                        "categories": [keypoint_category(one) for one in sorted(keypoint_labels.values(), key=_index)],
                        "images": images[split],
                        "annotations": keypoints.get(split, []),
                    },
                )


KEYPOINT_KINDS = POINT_KINDS
KEYPOINT_NAMES = {
    "point": (["point"], []),
    "line": (["start", "end"], [[1, 2]]),
    "angle": (["arm_a", "vertex", "arm_b"], [[1, 2], [2, 3]]),
}


def _index(label: LabelDef) -> int:
    return label.index


def keypoint_category(label: LabelDef) -> dict[str, Any]:
    """A point label has one keypoint; a line two, joined by the skeleton; an angle three, the vertex
    in the middle."""
    names, skeleton = KEYPOINT_NAMES[label.kind]
    return {
        "id": label.index,
        "name": label.name,
        "supercategory": "",
        "kind": label.kind,
        "color": label.color,
        "keypoints": names,
        "skeleton": skeleton,
    }


def coco_keypoints(one: AnnotationRef, label: LabelDef) -> dict[str, Any]:
    """The COCO keypoint fields of one point, line or angle (all but the ids), in pixel-corner coordinates."""
    geometry = one.geometry
    points = [(geometry["x"], geometry["y"])] if label.kind == "point" else [(p[0], p[1]) for p in geometry["points"]]
    corners = corner_xy([(float(x), float(y)) for x, y in points])
    xs, ys = [x for x, _ in corners], [y for _, y in corners]
    out = {
        "category_id": label.index,
        "iscrowd": 0,
        "keypoints": [v for x, y in corners for v in (x, y, 2)],
        "num_keypoints": len(corners),
        "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)],
        "area": 0.0,
        "attributes": dict(one.attributes),
        "source": {"id": one.id, "revision": one.revision, "reader": one.reader},
    }
    if label.kind == "line":
        out["length_mm"] = geometry.get("length_mm")
    if label.kind == "angle":
        out["angle_deg"] = geometry.get("angle_deg")
    return out


def coco_shape(one: AnnotationRef, label: LabelDef, frame: Frame) -> dict[str, Any]:
    """The COCO fields of one area annotation (all but the ids), in COCO's pixel-corner coordinates."""
    common = {
        "category_id": label.index,
        "iscrowd": 0,
        "attributes": dict(one.attributes),
        "source": {"id": one.id, "revision": one.revision, "reader": one.reader},
    }
    if label.kind == "mask":
        pixels = rasterize("mask", dict(one.geometry), frame.rows, frame.columns)
        rle = coco_mask.encode(np.asfortranarray(pixels.astype(np.uint8)))
        return common | {
            "segmentation": {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")},
            "area": int(coco_mask.area(rle)),
            "bbox": [float(v) for v in coco_mask.toBbox(rle)],
        }
    corners = corner_xy(shape_points(label.kind, one.geometry))
    xs, ys = [x for x, _ in corners], [y for _, y in corners]
    if label.kind == "ellipse":
        (cx, cy), radii = corner_xy([tuple(one.geometry["center"])])[0], one.geometry["radii"]
        common["ellipse"] = {"center": [cx, cy], "radii": list(radii), "rotation": one.geometry.get("rotation", 0.0)}
        common["area_mm2"] = one.geometry.get("area_mm2")
    return common | {
        "segmentation": [[v for point in corners for v in point]],
        "area": polygon_area(corners),
        "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)],
    }
