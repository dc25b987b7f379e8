"""The interface every export format implements, and the frozen input it reads. Imports no Django.

A frozen dataset version is a manifest (``datasets.manifest`` builds it; the shape is below).
The export job turns the manifest into an :class:`ExportInput`, gives it to one exporter with
an empty output folder, and then packs that folder into the archive (with ``manifest.json``,
``SHA256SUMS`` and the dataset card, which exporters do not write).

Rules every exporter keeps:

- **Deterministic bytes.** The same input gives the same files, byte for byte: no timestamps,
  no random names, JSON written with :func:`write_json`, gzip written with :func:`gzip_bytes`
  (``mtime=0``), samples in the order of ``ExportInput.samples``.
- **Never a silently wrong label.** Shapes, spacing, origin and direction are checked; a
  mismatch raises :class:`GeometryMismatch` naming the sample, and the export fails.
- Only files under ``out``; nothing read from a file's identifying attributes is written
  (the inputs are de-identified already, but file names come from sample keys and counters).

Manifest shape (``ExportInput.manifest``)::

    {
      "format": "workbench.dataset-version/1",
      "project": {"id": str, "name": str},
      "dataset": {"id": str, "name": str},
      "parent": str | None, "note": str,
      "selection": {...},                                   # the filters that chose the samples
      "labels": {"schema_id": str, "version": int,
                 "labels": [{"index": 1, "name": str, "color": "#rrggbb", "kind": str, "attributes": [...]}]},
      "split": {"seed": int, "ratios": {"train": .7, "validation": .15, "test": .15} | None,
                "folds": int | None, "group_by": "patient"},
      "augmentation": {"seed": int, "materialize": bool, "copies": int, "transforms": [{"name": str, ...}]},
      "deidentification": {...},                            # the project's profile and options
      "label_source": {"mode": str, "reader": str | None,   # which reads label the samples
                       "rule": str, "readers": [str]},      # (datasets.labelsource; absent: merged)
      "samples": [                                          # one per series, sorted by key
        {"key": str, "patient": str, "study_uid": str, "series_uid": str, "modality": str,
         "split": "train" | "validation" | "test", "fold": int | None,
         "instances": [{"sop_uid": str, "sha256": str, "size": int, "rows": int, "columns": int,
                        "frames": int, "pixel_spacing": [row_mm, col_mm] | None,
                        "position": float | None, "number": int | None}],   # ordered in space
         "reads": [{"assignment": str, "reader": str, "status": str}],   # the reads labels came from
         "annotations": [{"id": str, "revision": int, "label": str, "sop_uid": str, "frame": int,
                          "geometry": {...}, "attributes": {...}, "reader": str}]}
      ]
    }

Annotation geometry is in the image's pixel coordinates (``annotations.geometry``): ``x`` is the
column, ``y`` the row; masks are row-major run-length codes per frame.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from annotations.geometry import AREA_KINDS, rasterize

Progress = Callable[[int, int], None]  # (samples done, samples in all)

# Materialized augmentation (opt-in, train split only): given a train sample and its loaded image
# and label arrays (same shape), the augmenter returns the copies to write beside it, each as
# (suffix for the case name, image, label, the parameters that were applied). Volume formats call it.
Augmenter = Callable[
    ["Sample", "npt.NDArray[Any]", "npt.NDArray[Any]"],
    "list[tuple[str, npt.NDArray[Any], npt.NDArray[Any], dict[str, Any]]]",
]

SPLITS = ("train", "validation", "test")


class ExportError(Exception):
    """The export cannot be built; the message says which sample and why, for a person to act on."""

    def __init__(self, message: str, *, sample: str | None = None) -> None:
        super().__init__(f"Sample {sample}: {message}" if sample else message)
        self.sample = sample


def image_size(rows: int, columns: int) -> str:
    """An image size as people read it: width (columns) by height (rows)."""
    return f"{columns} x {rows} (width x height)"


class GeometryMismatch(ExportError):
    """Image and labels (or slices of one image) disagree in shape, spacing, origin or direction."""


@dataclass(frozen=True)
class LabelDef:
    index: int  # the value in label maps and the class id (0 is background)
    name: str
    color: str
    kind: str
    attributes: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class InstanceRef:
    sop_uid: str
    sha256: str
    size: int
    rows: int
    columns: int
    frames: int
    pixel_spacing: tuple[float, float] | None
    position: float | None
    number: int | None


@dataclass(frozen=True)
class AnnotationRef:
    id: str
    revision: int
    label: str
    sop_uid: str
    frame: int
    geometry: Mapping[str, Any]
    attributes: Mapping[str, Any]
    reader: str


@dataclass(frozen=True)
class Sample:
    """One series of the version: its instances in spatial order and its frozen annotations."""

    key: str
    patient: str
    study_uid: str
    series_uid: str
    modality: str
    split: str
    fold: int | None
    instances: tuple[InstanceRef, ...]
    annotations: tuple[AnnotationRef, ...]

    def annotations_on(self, sop_uid: str, frame: int) -> list[AnnotationRef]:
        return [a for a in self.annotations if a.sop_uid == sop_uid and a.frame == frame]


@dataclass(frozen=True)
class ExportInput:
    """What an exporter reads. ``path_of(sop_uid)`` gives a local, checksum-verified file."""

    version_id: str
    name: str
    manifest: Mapping[str, Any]
    labels: tuple[LabelDef, ...]
    samples: tuple[Sample, ...]
    path_of: Callable[[str], Path]
    folds: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    augment: Augmenter | None = None

    @classmethod
    def from_manifest(
        cls,
        manifest: Mapping[str, Any],
        *,
        version_id: str,
        path_of: Callable[[str], Path],
        options: Mapping[str, Any] | None = None,
        augment: Augmenter | None = None,
    ) -> ExportInput:
        labels = tuple(
            LabelDef(
                index=int(one["index"]),
                name=one["name"],
                color=one["color"],
                kind=one["kind"],
                attributes=tuple(one.get("attributes") or ()),
            )
            for one in manifest["labels"]["labels"]
        )
        samples = tuple(_sample(one) for one in manifest["samples"])
        return cls(
            version_id=version_id,
            name=manifest["dataset"]["name"],
            manifest=manifest,
            labels=labels,
            samples=samples,
            path_of=path_of,
            folds=manifest["split"].get("folds"),
            options=dict(options or {}),
            augment=augment,
        )

    def label(self, name: str) -> LabelDef:
        for one in self.labels:
            if one.name == name:
                return one
        raise ExportError(f"the label {name!r} is not in the version's label schema")

    @property
    def area_labels(self) -> tuple[LabelDef, ...]:
        """Labels that cover pixels (box, polygon, freehand, ellipse, mask): the ones label maps hold."""
        return tuple(one for one in self.labels if one.kind in AREA_KINDS)


def _sample(one: Mapping[str, Any]) -> Sample:
    return Sample(
        key=one["key"],
        patient=one["patient"],
        study_uid=one["study_uid"],
        series_uid=one["series_uid"],
        modality=one["modality"],
        split=one["split"],
        fold=one.get("fold"),
        instances=tuple(
            InstanceRef(
                sop_uid=i["sop_uid"],
                sha256=i["sha256"],
                size=int(i["size"]),
                rows=int(i["rows"]),
                columns=int(i["columns"]),
                frames=int(i["frames"]),
                pixel_spacing=tuple(i["pixel_spacing"]) if i.get("pixel_spacing") else None,  # type: ignore[arg-type]
                position=i.get("position"),
                number=i.get("number"),
            )
            for i in one["instances"]
        ),
        annotations=tuple(
            AnnotationRef(
                id=a["id"],
                revision=int(a["revision"]),
                label=a["label"],
                sop_uid=a["sop_uid"],
                frame=int(a["frame"]),
                geometry=a["geometry"],
                attributes=a.get("attributes") or {},
                reader=a["reader"],
            )
            for a in one["annotations"]
        ),
    )


class Exporter:
    """One export format. Subclasses set ``name`` and ``title`` and implement :meth:`export`."""

    name: ClassVar[str]
    title: ClassVar[str]
    # Which option keys the format accepts, with a one-line description each (shown by the API).
    options: ClassVar[Mapping[str, str]] = {}
    # Whether an all_readers version may be exported as one label set per reader (datasets.build).
    label_sets: ClassVar[bool] = True

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Raise ExportError naming an option whose value the format cannot use. Called when the
        export is asked for (so a bad value is refused then, not when the job fails) and again
        by :meth:`export`, which reads the same values."""

    def export(self, data: ExportInput, out: Path, *, progress: Progress) -> None:
        """Write the format's files under ``out`` (an empty folder); raise ExportError on bad input."""
        raise NotImplementedError


def label_map(
    annotations: Iterable[AnnotationRef],
    labels: Sequence[LabelDef],
    rows: int,
    columns: int,
    *,
    sample: str,
) -> npt.NDArray[np.uint8]:
    """One frame's label map: 0 background, else the label's index; labels later in the schema win overlaps.

    Only area labels (box, polygon, freehand, ellipse, mask) are drawn; points, lines, angles and classifications
    are not pixels. A mask whose size differs from the frame fails with GeometryMismatch.
    """
    by_name = {one.name: one for one in labels}
    out = np.zeros((rows, columns), dtype=np.uint8)
    drawn = sorted(
        (a for a in annotations if a.label in by_name and by_name[a.label].kind in AREA_KINDS),
        key=lambda a: (by_name[a.label].index, a.id),
    )
    for one in drawn:
        kind = by_name[one.label].kind
        if kind == "mask":
            size = (int(one.geometry.get("rows", rows)), int(one.geometry.get("columns", columns)))
            if size != (rows, columns):
                raise GeometryMismatch(
                    f"the mask of annotation {one.id} is {image_size(*size)} "
                    f"but its image is {image_size(rows, columns)}",
                    sample=sample,
                )
        out[rasterize(kind, dict(one.geometry), rows, columns)] = by_name[one.label].index
    return out


def canonical_json(value: Any) -> bytes:
    """The one JSON encoding used for manifests and checksummed files: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def write_json(path: Path, value: Any) -> None:
    """Readable, deterministic JSON (sorted keys, two-space indent, trailing newline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def gzip_bytes(raw: bytes) -> bytes:
    """gzip with no timestamp or file name in the header, so equal input gives equal bytes.

    Level 1, as nibabel writes .nii.gz: CT noise barely compresses further, and level 6 cost
    the NIfTI export three quarters of its time (bench/export_throughput.py).
    """
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="", compresslevel=1) as stream:
        stream.write(raw)
    return buffer.getvalue()


REGISTRY: dict[str, type[Exporter]] = {}


def register(cls: type[Exporter]) -> type[Exporter]:
    """Class decorator: make a format available by its ``name``."""
    REGISTRY[cls.name] = cls
    return cls
