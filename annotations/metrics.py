"""Agreement between readers of the same series: Dice and IoU for areas, Cohen's and Fleiss' kappa for classes.

``compute_agreement`` is pure (plain data in, plain data out) and tested on its own;
``agreement_for_project`` gathers the finished reads of a project and calls it.

For every series read by two or more readers, each pair of readers is compared per
label. Areas (box, polygon, freehand, mask): on each image either reader marked, the
union of each reader's shapes is rasterized and the pixel counts are summed over the
series, giving one Dice and IoU per (series, pair); the label's figure is their mean.
A label only one of the pair used on a series is *not comparable* there, not a Dice of 0:
that (series, pair) is counted in ``not_comparable`` and left out of every mean, and a
label no pair could compare has ``dice`` and ``iou`` None. Classifications: each (series, pair)
contributes (class by A, class by B) items, per image for image-level labels, one for
series-level ones, a missing class counting as "(none)"; kappa is over all items
pooled. Fleiss' kappa takes every reader of a series at once, on series read by three or
more readers: each image (or the series, for series-level labels) that any of them classified
is one item rated by all of them, a missing class counting as "(none)"; items are pooled over
those series (``annotations.agreement.fleiss_kappa``, which allows a different number of
readers per series). A label no such series has is not comparable (``fleiss_kappa`` None,
``fleiss_items`` 0). A series' disagreement is 1 - the mean of its agreements (Dice for areas, the
share of equal classes for classifications).

Given the series' volumes (slices in spatial order, spacing in mm), area labels also get the
3-D measures of ``annotations.agreement`` per (series, pair), each label's figure the mean:
surface Dice at the project's tolerance, HD95 in mm and the absolute volume difference in
mm³ (ellipses are areas: rasterized like any other). Lines and angles: ICC(2,1) of the two
readers' lengths (degrees) on each image both measured, pooled over series and pairs. Points
have no figure.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import fmean
from typing import Any

import numpy as np

from annotations import agreement as agr
from annotations import geometry as geo

NONE_CLASS = "(none)"


@dataclass(frozen=True)
class Shape:
    """One reader's annotation, as metrics need it."""

    label: str
    kind: str
    sop_instance_uid: str = ""
    frame: int = 0
    geometry: Mapping[str, Any] = field(default_factory=dict)
    attributes: Mapping[str, Any] = field(default_factory=dict)


# series -> reader -> shapes; only series with two or more readers are compared.
Reads = Mapping[Hashable, Mapping[Hashable, Sequence[Shape]]]


@dataclass(frozen=True)
class Volume:
    """A series as a volume: its images in spatial order, their size and the spacing (z, y, x) in mm."""

    sops: tuple[str, ...]
    rows: int
    columns: int
    spacing: tuple[float, float, float]


def _mask_volume(shapes: Sequence[Shape], volume: Volume) -> np.ndarray:
    out = np.zeros((len(volume.sops), volume.rows, volume.columns), dtype=bool)
    index = {sop: k for k, sop in enumerate(volume.sops)}
    for shape in shapes:
        k = index.get(shape.sop_instance_uid)
        if k is not None:
            out[k] |= geo.rasterize(shape.kind, dict(shape.geometry), volume.rows, volume.columns)
    return out


def _measures(kind: str, shapes: Sequence[Shape]) -> dict[tuple[str, int], float]:
    """(image, frame) -> the largest measurement there: a line's length in mm where known, else
    in pixels; an angle's degrees."""
    out: dict[tuple[str, int], float] = {}
    for shape in shapes:
        points = shape.geometry.get("points") or []
        value: float | None
        if kind == "angle":
            value = shape.geometry.get("angle_deg")
            if value is None and len(points) == 3:
                value = geo.angle_degrees(points)
        elif len(points) == 2:
            value = shape.geometry.get("length_mm")
            if value is None:
                (x0, y0), (x1, y1) = points
                value = float(np.hypot(x1 - x0, y1 - y0))
        else:
            value = None
        if value is None:
            continue
        key = (shape.sop_instance_uid, shape.frame)
        out[key] = max(out.get(key, 0.0), float(value))
    return out


def _mean(values: list[float]) -> float | None:
    return round(fmean(values), 4) if values else None


def _area_overlap(a: Sequence[Shape], b: Sequence[Shape], dims: Mapping[str, tuple[int, int]]) -> geo.Overlap:
    total = geo.Overlap()
    images = sorted({(s.sop_instance_uid, s.frame) for s in (*a, *b)})
    for sop, frame in images:
        on_a = [s for s in a if (s.sop_instance_uid, s.frame) == (sop, frame)]
        on_b = [s for s in b if (s.sop_instance_uid, s.frame) == (sop, frame)]
        if sop in dims:
            rows, columns = dims[sop]
        else:
            extents = [geo.extent(s.kind, dict(s.geometry)) for s in (*on_a, *on_b)]
            rows, columns = max(e[0] for e in extents), max(e[1] for e in extents)
        masks = []
        for shapes in (on_a, on_b):
            mask = np.zeros((rows, columns), dtype=bool)
            for shape in shapes:
                mask |= geo.rasterize(shape.kind, dict(shape.geometry), rows, columns)
            masks.append(mask)
        total = total + geo.overlap(masks[0], masks[1])
    return total


def _classes_by_key(kind: str, shapes: Sequence[Shape]) -> dict[tuple[str, int], Hashable]:
    out: dict[tuple[str, int], Hashable] = {}
    for shape in shapes:  # in save order: the last class given wins
        key = ("", 0) if kind == "classification_series" else (shape.sop_instance_uid, shape.frame)
        out[key] = shape.attributes.get("value", NONE_CLASS)
    return out


def _class_items(kind: str, a: Sequence[Shape], b: Sequence[Shape]) -> list[tuple[Hashable, Hashable]]:
    classes_a, classes_b = _classes_by_key(kind, a), _classes_by_key(kind, b)
    keys = sorted(set(classes_a) | set(classes_b))
    return [(classes_a.get(k, NONE_CLASS), classes_b.get(k, NONE_CLASS)) for k in keys]


FLEISS_MIN_READERS = 3


def _fleiss_items(kind: str, by_reader: Sequence[Sequence[Shape]]) -> list[list[Hashable]]:
    """One item per image (or one per series) any reader classified: every reader's class there."""
    classes = [_classes_by_key(kind, shapes) for shapes in by_reader]
    keys = sorted({k for one in classes for k in one})
    return [[one.get(k, NONE_CLASS) for one in classes] for k in keys]


def compute_agreement(
    reads: Reads,
    kinds: Mapping[str, str],
    dims: Mapping[str, tuple[int, int]] | None = None,
    *,
    volumes: Mapping[Hashable, Volume] | None = None,
    tolerance_mm: float = 2.0,
) -> dict[str, Any]:
    """{"labels": [{label, kind, dice, iou, surface_dice, hd95_mm, volume_difference_mm3, kappa,
    fleiss_kappa, fleiss_items, icc, pairs, not_comparable, tolerance_mm}],
    "series": [{series, readers, disagreement, labels, not_comparable}]}.

    A series' ``labels`` maps each compared label to its mean agreement; ``not_comparable``
    lists the area labels only one reader of some pair used there (no figure, in no mean).
    """
    dims = dims or {}
    volumes = volumes or {}
    surface: dict[str, list[float]] = defaultdict(list)
    hd95: dict[str, list[float]] = defaultdict(list)
    volume_diff: dict[str, list[float]] = defaultdict(list)
    lengths: dict[str, list[tuple[float, float]]] = defaultdict(list)
    dice: dict[str, list[float]] = defaultdict(list)
    iou: dict[str, list[float]] = defaultdict(list)
    class_items: dict[str, list[tuple[Hashable, Hashable]]] = defaultdict(list)
    fleiss_items: dict[str, list[list[Hashable]]] = defaultdict(list)
    pairs: dict[str, int] = defaultdict(int)
    one_sided: dict[str, int] = defaultdict(int)
    series_rows = []
    for series, by_reader in reads.items():
        if len(by_reader) < 2:
            continue
        per_label: dict[str, list[float]] = defaultdict(list)
        series_one_sided: set[str] = set()
        if len(by_reader) >= FLEISS_MIN_READERS:
            readers = sorted(by_reader, key=str)
            for name, kind in kinds.items():
                if kind in geo.CLASS_KINDS:
                    shapes = [[s for s in by_reader[r] if s.label == name] for r in readers]
                    fleiss_items[name].extend(_fleiss_items(kind, shapes))
        for reader_a, reader_b in itertools.combinations(sorted(by_reader, key=str), 2):
            for name, kind in kinds.items():
                a = [s for s in by_reader[reader_a] if s.label == name]
                b = [s for s in by_reader[reader_b] if s.label == name]
                if not a and not b:
                    continue
                if kind in geo.AREA_KINDS and not (a and b):
                    one_sided[name] += 1
                    series_one_sided.add(name)
                    continue
                if kind in geo.AREA_KINDS:
                    result = _area_overlap(a, b, dims)
                    if result.dice is None or result.iou is None:
                        continue
                    dice[name].append(result.dice)
                    iou[name].append(result.iou)
                    per_label[name].append(result.dice)
                    if series in volumes:
                        volume = volumes[series]
                        measured = agr.mask_agreement(
                            _mask_volume(a, volume),
                            _mask_volume(b, volume),
                            volume.spacing,
                            tolerance_mm=tolerance_mm,
                        )
                        volume_diff[name].append(abs(measured.volume_difference_mm3))
                        if measured.surface_dice is not None:
                            surface[name].append(measured.surface_dice)
                        if measured.hd95_mm is not None:
                            hd95[name].append(measured.hd95_mm)
                elif kind in geo.CLASS_KINDS:
                    items = _class_items(kind, a, b)
                    class_items[name].extend(items)
                    per_label[name].append(sum(1 for x, y in items if x == y) / len(items))
                elif kind in ("line", "angle") and a and b:
                    on_a, on_b = _measures(kind, a), _measures(kind, b)
                    both = sorted(set(on_a) & set(on_b))
                    if not both:
                        continue
                    lengths[name].extend((on_a[key], on_b[key]) for key in both)
                else:
                    continue
                pairs[name] += 1
        agreements = [value for values in per_label.values() for value in values]
        series_rows.append(
            {
                "series": series,
                "readers": sorted((str(r) for r in by_reader), key=str),
                "disagreement": round(1 - fmean(agreements), 4) if agreements else None,
                "labels": {name: round(fmean(values), 4) for name, values in per_label.items()},
                "not_comparable": sorted(series_one_sided - set(per_label)),
            }
        )
    labels = []
    for name, kind in kinds.items():
        kappa = geo.cohen_kappa(class_items[name]) if class_items[name] else None
        fleiss = agr.fleiss_kappa(fleiss_items[name]) if fleiss_items[name] else None
        icc = agr.icc_2_1(lengths[name]) if len(lengths[name]) >= 2 else None
        labels.append(
            {
                "label": name,
                "kind": kind,
                "dice": _mean(dice[name]),
                "iou": _mean(iou[name]),
                "surface_dice": _mean(surface[name]),
                "hd95_mm": _mean(hd95[name]),
                "volume_difference_mm3": _mean(volume_diff[name]),
                "tolerance_mm": tolerance_mm,
                "kappa": round(kappa, 4) if kappa is not None else None,
                "fleiss_kappa": round(fleiss, 4) if fleiss is not None else None,
                "fleiss_items": len(fleiss_items[name]),
                "icc": round(icc, 4) if icc is not None else None,
                "pairs": pairs[name],
                "not_comparable": one_sided[name],
            }
        )
    series_rows.sort(key=lambda row: (row["disagreement"] is None, -float(row["disagreement"] or 0)))  # type: ignore[arg-type]
    return {"labels": labels, "series": series_rows}


def agreement_for_project(*, project: Any) -> dict[str, Any]:
    """Agreement over the project's finished reads (submitted or accepted assignments); reviewers and admins."""
    from annotations import selectors
    from workbench.models import Instance

    reads: dict[Hashable, dict[Hashable, list[Shape]]] = defaultdict(dict)
    series_info = {}
    for assignment in selectors.assignment_list_finished(project=project):
        reads[assignment.series_id][assignment.reader_name] = []
        series_info[assignment.series_id] = assignment.series
    kinds: dict[str, str] = {}
    current = selectors.label_schema_current(project=project)
    for label in current.labels.all() if current else []:
        kinds[label.name] = label.kind
    for annotation in selectors.annotations_for_agreement(project=project):
        kinds.setdefault(annotation.label.name, annotation.label.kind)
        shape = Shape(
            label=annotation.label.name,
            kind=annotation.label.kind,
            sop_instance_uid=annotation.sop_instance_uid,
            frame=annotation.frame,
            geometry=annotation.geometry,
            attributes=annotation.attributes,
        )
        reads[annotation.assignment.series_id][annotation.assignment.reader_name].append(shape)
    compared = {series: by_reader for series, by_reader in reads.items() if len(by_reader) >= 2}
    dims = {
        sop: (rows, columns)
        for sop, rows, columns in Instance.objects.filter(series_id__in=compared).values_list(
            "sop_uid", "rows", "columns"
        )
        if rows and columns
    }
    from annotations.adjudication import consensus_settings_of

    tolerance = consensus_settings_of(project).surface_tolerance_mm
    result = compute_agreement(compared, kinds, dims, volumes=_volumes(compared), tolerance_mm=tolerance)
    for row in result["series"]:
        series = series_info[row["series"]]
        row.update(
            series=str(series.pk),
            patient=series.study.patient.pseudo_id,
            modality=series.modality,
            description=series.description,
        )
    return result


def _volumes(series_ids: Any) -> dict[Hashable, Volume]:
    """The compared series that are volumes: one image size, slices in spatial order, spacing in mm
    (z from the slice positions, else the slice thickness, else 1 mm)."""
    from workbench.models import Instance
    from workbench.models.catalog import spatial_order

    by_series: dict[Hashable, list[Any]] = defaultdict(list)
    fields = ("series_id", "sop_uid", "rows", "columns", "pixel_spacing", "slice_position", "slice_thickness")
    for one in Instance.objects.filter(series_id__in=list(series_ids)).order_by(*spatial_order()).values(*fields):
        by_series[one["series_id"]].append(one)
    out: dict[Hashable, Volume] = {}
    for series_id, images in by_series.items():
        sizes = {(one["rows"], one["columns"]) for one in images}
        if len(sizes) != 1 or not all(sizes.pop()):
            continue
        rows, columns = images[0]["rows"], images[0]["columns"]
        row_mm, column_mm = (images[0]["pixel_spacing"] or [1.0, 1.0])[:2]
        positions = [one["slice_position"] for one in images if one["slice_position"] is not None]
        steps = np.abs(np.diff(positions)) if len(positions) == len(images) > 1 else np.array([])
        steps = steps[steps > 0]
        z = float(np.median(steps)) if steps.size else float(images[0]["slice_thickness"] or 1.0)
        out[series_id] = Volume(
            sops=tuple(one["sop_uid"] for one in images),
            rows=rows,
            columns=columns,
            spacing=(z, float(row_mm), float(column_mm)),
        )
    return out
