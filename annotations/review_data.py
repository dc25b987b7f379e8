"""What the adjudication page and API show of one series: its reads, its consensus and the
pictures (annotations.overlay) of one slice. Reads only."""

from __future__ import annotations

from typing import Any

import numpy as np
from django.core.files.storage import default_storage
from PIL import Image

from annotations import geometry as geo
from annotations import overlay, selectors
from annotations.adjudication import reopened_of
from annotations.models import Annotation, Assignment, ConsensusState, LabelKind
from workbench.models import Instance, Series
from workbench.models.catalog import spatial_order
from workbench.render import RenderError, frame_png

# What the page shows for the codes the summary keeps (the API keeps the codes).
STATE_WORDS = {**dict(ConsensusState.choices), "pending": "Waiting for every read"}
MEASURE_WORDS = {
    "dice_3d": "Dice over the series (3-D)",
    "matched_iou": "IoU of matched boxes",
    "class_agreement": "share of readers agreeing",
    "": "not compared",
}
METHOD_WORDS = {
    "staple": "STAPLE",
    "wbf": "weighted box fusion",
    "majority": "majority vote",
    "first_read": "first read (nothing to fuse)",
}


def consensus_summary(series: Series) -> dict[str, Any]:
    """The series' reads, consensus state, agreement per label and the decision (API and page)."""
    row = selectors.consensus_of(series=series)
    reads = list(selectors.series_reads(series=series))
    out: dict[str, Any] = {
        "series": str(series.pk),
        "patient": series.study.patient.pseudo_id,
        "modality": series.modality,
        "description": series.description,
        "state": row.state if row else "pending",
        "agreement": row.agreement if row else None,
        "threshold": row.threshold if row else None,
        "state_words": STATE_WORDS.get(row.state if row else "pending", ""),
        "labels": [
            {
                **one,
                "measure_words": MEASURE_WORDS.get(one.get("measure", ""), one.get("measure", "")),
                "method_words": METHOD_WORDS.get(one.get("method", ""), one.get("method", "")),
                "kind_words": dict(LabelKind.choices).get(one.get("kind", ""), one.get("kind", "")),
            }
            for one in (row.details.values() if row else [])
        ],
        "reads": [{"id": str(r.pk), "reader": r.reader_name, "status": r.status} for r in reads],
        "consensus": str(row.assignment_id) if row else None,
        "computed_at": row.computed_at.isoformat() if row else None,
        "decision": None,
        # set while a decided consensus waits again because a read changed after the decision
        "reopened": reopened_of(row) if row else None,
        "history": list(row.history) if row else [],
    }
    if row and row.decided_at:
        out["decision"] = {
            "by": row.decided_by.get_username() if row.decided_by else None,
            "at": row.decided_at.isoformat(),
            "reason": row.reason,
            "source": row.decision_source,
            "read": str(row.source_read_id) if row.source_read_id else None,
            "reader": row.source_read.reader_name if row.source_read else None,
        }
    return out


def slices_of(series: Series) -> list[Instance]:
    return list(Instance.objects.filter(series=series).order_by(*spatial_order()))


def marked_slices(series: Series) -> list[int]:
    """Indexes (in spatial order) of the images any reader marked with an area label."""
    sops = {a.sop_instance_uid for a in _area(Annotation.objects.filter(assignment__series=series, deleted=False))}
    return [i for i, one in enumerate(slices_of(series)) if one.sop_uid in sops]


def _area(qs: Any) -> list[Annotation]:
    return [a for a in qs.select_related("label") if a.label.kind in geo.AREA_KINDS]


def _grey(instance: Instance) -> Image.Image | None:
    try:
        with default_storage.open(instance.storage_path, "rb") as stream:
            import io

            return Image.open(io.BytesIO(frame_png(stream))).convert("L")
    except (OSError, RenderError, IndexError):
        return None  # no file to draw (or not drawable): the labels over black


def _masks(assignment: Assignment, instance: Instance) -> list[tuple[np.ndarray, str]]:
    rows, columns = instance.rows or 1, instance.columns or 1
    found = Annotation.objects.filter(assignment=assignment, sop_instance_uid=instance.sop_uid, deleted=False)
    return [(geo.rasterize(a.label.kind, a.geometry, rows, columns), a.label.color) for a in _area(found)]


def layer_png(series: Series, index: int, layer: str) -> bytes | None:
    """One picture of slice ``index``: a read's labels (layer = its assignment id, or "consensus"),
    or "heat", the count of readers marking each pixel. None when there is no such slice or read."""
    slices = slices_of(series)
    if not 0 <= index < len(slices):
        return None
    instance = slices[index]
    rows, columns = instance.rows or 1, instance.columns or 1
    reads = list(selectors.series_reads(series=series))
    if layer == "heat":
        counts = np.zeros((rows, columns), dtype=np.int32)
        for read in reads:
            union = np.zeros((rows, columns), dtype=bool)
            for mask, _ in _masks(read, instance):
                union |= mask
            counts += union
        return overlay.heat_png(_grey(instance), counts, len(reads), rows, columns)
    if layer == "consensus":
        row = selectors.consensus_of(series=series)
        target = row.assignment if row else None
    else:
        target = next((r for r in reads if str(r.pk) == layer), None)
    if target is None:
        return None
    return overlay.labels_png(_grey(instance), _masks(target, instance), rows, columns)
