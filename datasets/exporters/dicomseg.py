"""DICOM Segmentation objects over the de-identified source images, made with highdicom. Imports no Django.

Layout::

    case_0000/image/0000.dcm ...   # the sample's de-identified files, byte for byte, in spatial order
    case_0000/seg.dcm              # one BINARY SEG: a segment per area label with pixels in the sample
    index.json                     # case -> sample key, patient, split, fold, series, seg (or null), images

Each label is its own segment, so overlapping labels both survive (a label map could keep only one).
A sample with no area pixels gets its images and no SEG; ``index.json`` says so with ``"seg": null``.

Deterministic bytes: highdicom stamps the time of creation and draws a random dimension
organization UID; both are replaced here (see :func:`_pin`), and the SEG's own UIDs are derived
from the version id and the sample key. highdicom writes its own version into the file, so an
upgrade of highdicom (not a rerun) changes the bytes.
"""

from __future__ import annotations

import hashlib
import uuid
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import numpy.typing as npt
import pydicom
from pydicom import Dataset
from pydicom.sr.codedict import codes

from datasets.exporters.base import (
    AnnotationRef,
    Exporter,
    ExportError,
    ExportInput,
    GeometryMismatch,
    LabelDef,
    Progress,
    Sample,
    canonical_json,
    label_map,
    register,
    write_json,
)
from datasets.exporters.dicom import copy_sources

PRIVATE_SCHEME = "99WORKBENCH"  # PS3.16 8.2: "99" starts a private coding scheme designator
# Label names that name a SNOMED CT concept outright get that code (category: morphologically
# abnormal structure). Anything less obvious keeps the private code rather than a guessed one.
SNOMED_TYPES = {
    "lesion": codes.SCT.Lesion,
    "nodule": codes.SCT.Nodule,
    "mass": codes.SCT.Mass,
    "tumor": codes.SCT.Tumor,
    "tumour": codes.SCT.Tumor,
    "neoplasm": codes.SCT.Neoplasm,
}
SNOMED_CATEGORY = codes.SCT.MorphologicallyAbnormalStructure

EQUIPMENT = "Workbench"
SOFTWARE_VERSION = "workbench-dicomseg/1"  # the writer's version, not the app's: a release must not change bytes
# The SEG IOD requires a content date and time; a fixed one keeps bytes equal between exports.
# Frozen versions carry no creation time, and "now" would break determinism.
CONTENT_DATE, CONTENT_TIME = "19700101", "000000"
SERIES_NUMBER = INSTANCE_NUMBER = 1
LO_MAX = 64  # SegmentLabel and CodeMeaning are LO

# Type 2 attributes highdicom reads from the source without a default; the de-identification
# profile may have removed them, and an empty value is what the standard asks for then.
_TYPE2_SOURCE = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
)


@register
class DicomSegExporter(Exporter):
    name = "dicomseg"
    title = "DICOM Segmentation (SEG over the de-identified images)"

    def export(self, data: ExportInput, out: Path, *, progress: Progress) -> None:
        """Copy each sample's images and write its SEG; GeometryMismatch or ExportError name the sample."""
        index: dict[str, Any] = {}
        labels = sorted(data.area_labels, key=lambda one: one.index)
        for number, sample in enumerate(data.samples):
            case = f"case_{number:04d}"
            copies = copy_sources(data, sample, out / case / "image")
            sources = [_read_source(path) for path in copies]
            segments = segment_masks(sample, labels, sources)
            seg_path: str | None = None
            if segments.drawn:
                seg = build_segmentation(data.version_id, sample, sources, segments)
                seg.save_as(out / case / "seg.dcm")
                seg_path = f"{case}/seg.dcm"
            index[case] = {
                "sample": sample.key,
                "patient": sample.patient,
                "split": sample.split,
                "fold": sample.fold,
                "series_uid": sample.series_uid,
                "seg": seg_path,
                "segments": [
                    {"number": n, "label": label.name} for n, (label, _) in enumerate(segments.drawn, start=1)
                ],
                "images": [f"{case}/image/{path.name}" for path in copies],
            }
            progress(number + 1, len(data.samples))
        write_json(out / "index.json", index)


def _read_source(path: Path) -> Dataset:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    for keyword in _TYPE2_SOURCE:
        if keyword not in ds:
            setattr(ds, keyword, None)
    return ds


# Geometry compared between a series' images: exactly, or (numbers) within a tolerance, since
# scanners round DS values per slice and a strict compare would reject good series.
_SAME_EXACTLY = ("Rows", "Columns", "FrameOfReferenceUID")
_SAME_WITHIN = {"PixelSpacing": 1e-3, "ImageOrientationPatient": 1e-4}


def _planes(sample: Sample, sources: Sequence[Dataset]) -> list[tuple[str, int]]:
    """(sop_uid, frame) of every plane the SEG covers, checking that the sources share one geometry.

    Values equal within rounding are made exactly equal in ``sources`` (the parsed headers).
    """
    first = sources[0]
    for instance, ds in zip(sample.instances, sources, strict=True):
        for keyword in (*_SAME_EXACTLY, *_SAME_WITHIN):
            if not _same(keyword, ds.get(keyword), first.get(keyword)):
                raise GeometryMismatch(
                    f"the image {instance.sop_uid} differs from the series' first image in {keyword}",
                    sample=sample.key,
                )
        for keyword in _SAME_WITHIN:
            # highdicom compares these exactly; within tolerance they are the same plane, so the
            # in-memory copies (never the files) take the first image's values.
            if keyword in first:
                setattr(ds, keyword, first[keyword].value)
    frames = [int(ds.get("NumberOfFrames") or 1) for ds in sources]
    if len(sources) > 1 and max(frames) > 1:
        # highdicom takes either single-frame images or exactly one multi-frame image.
        raise ExportError("a series that mixes several multi-frame images cannot become one SEG", sample=sample.key)
    return [(i.sop_uid, f) for i, n in zip(sample.instances, frames, strict=True) for f in range(n)]


def _same(keyword: str, value: Any, reference: Any) -> bool:
    if keyword not in _SAME_WITHIN or value is None or reference is None:
        return bool(value == reference)
    ours, theirs = [float(v) for v in value], [float(v) for v in reference]
    return len(ours) == len(theirs) and bool(np.allclose(ours, theirs, rtol=0, atol=_SAME_WITHIN[keyword]))


@dataclass(frozen=True)
class Segments:
    """What one SEG holds: its planes, and per segment (in order) the label and its non-empty planes' masks.

    Masks are kept per drawn plane only; the full (planes, rows, columns, segments) array is made
    once, for highdicom, so a long series with few drawn slices costs one array, not one per label.
    """

    planes: int
    rows: int
    columns: int
    drawn: tuple[tuple[LabelDef, Mapping[int, npt.NDArray[np.bool_]]], ...]

    def pixels(self) -> npt.NDArray[np.bool_]:
        out = np.zeros((self.planes, self.rows, self.columns, len(self.drawn)), dtype=bool)
        for s, (_, masks) in enumerate(self.drawn):
            for plane, mask in masks.items():
                out[plane, :, :, s] = mask
        return out


def segment_masks(sample: Sample, labels: Sequence[LabelDef], sources: Sequence[Dataset]) -> Segments:
    """The sample's area labels that have pixels, each drawn on its own (overlaps kept), in ``labels`` order."""
    planes = _planes(sample, sources)
    rows, columns = int(sources[0].Rows), int(sources[0].Columns)
    names = {label.name for label in labels}
    plane_of = {plane: p for p, plane in enumerate(planes)}
    grouped: dict[tuple[str, int], list[AnnotationRef]] = defaultdict(list)  # (label, plane) -> annotations
    for one in sample.annotations:
        if one.label not in names:
            continue
        if (one.sop_uid, one.frame) not in plane_of:
            # Dropping it would ship a SEG that says "nothing here" where a reader drew something.
            raise ExportError(
                f"annotation {one.id} is on image {one.sop_uid} frame {one.frame}, which the series does not hold",
                sample=sample.key,
            )
        grouped[(one.label, plane_of[(one.sop_uid, one.frame)])].append(one)
    segments = []
    for label in labels:
        masks = {}
        for p in sorted(p for name, p in grouped if name == label.name):
            # label_map with one label: its rasterizing, plus the mask-size check (GeometryMismatch).
            mask = label_map(grouped[(label.name, p)], (label,), rows, columns, sample=sample.key) != 0
            if mask.any():
                masks[p] = mask
        if masks:
            segments.append((label, masks))
    return Segments(planes=len(planes), rows=rows, columns=columns, drawn=tuple(segments))


def build_segmentation(
    version_id: str, sample: Sample, sources: Sequence[Dataset], segments: Segments
) -> hd.seg.Segmentation:
    """The sample's BINARY SEG, segment n for ``segments.drawn[n - 1]``; equal input gives equal bytes once saved."""
    pixels = segments.pixels()
    descriptions = [segment_description(number, label) for number, (label, _) in enumerate(segments.drawn, start=1)]
    try:
        with warnings.catch_warnings():
            # Pseudonymous patient names are single-component on purpose; highdicom's warning would
            # only put the pseudonym in the worker's log.
            warnings.filterwarnings("ignore", message=".*person name.*", category=UserWarning)
            seg = hd.seg.Segmentation(
                source_images=sources,
                pixel_array=pixels,
                segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
                segment_descriptions=descriptions,
                series_instance_uid=derived_uid(version_id, sample.key, "seg-series"),
                series_number=SERIES_NUMBER,
                sop_instance_uid=derived_uid(version_id, sample.key, "seg"),
                instance_number=INSTANCE_NUMBER,
                manufacturer=EQUIPMENT,
                manufacturer_model_name=EQUIPMENT,
                software_versions=SOFTWARE_VERSION,
                device_serial_number=EQUIPMENT,
                content_description="Annotations exported by Workbench",
                content_label="WORKBENCH",
                content_date=CONTENT_DATE,
                content_time=CONTENT_TIME,
                series_description="Workbench annotations",
            )
    except (ValueError, TypeError, AttributeError) as exc:
        raise ExportError(f"highdicom could not build the segmentation: {exc}", sample=sample.key) from exc
    _pin(seg, derived_uid(version_id, sample.key, "seg-dimension-organization"))
    if any(d.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator == PRIVATE_SCHEME for d in descriptions):
        seg.CodingSchemeIdentificationSequence = [_private_scheme()]
    return seg


def _pin(seg: Dataset, dimension_organization_uid: str) -> None:
    """Replace what highdicom draws from the clock or at random (checked by the determinism test)."""
    for keyword in ("InstanceCreationDate", "InstanceCreationTime"):  # Type 3: better absent than invented
        if keyword in seg:
            delattr(seg, keyword)
    for item in seg.get("ContributingEquipmentSequence", []):
        if "ContributionDateTime" in item:  # Type 3 as well
            del item.ContributionDateTime
    for keyword in ("DimensionOrganizationSequence", "DimensionIndexSequence"):
        for item in seg.get(keyword, []):
            if "DimensionOrganizationUID" in item:
                item.DimensionOrganizationUID = dimension_organization_uid


def segment_description(number: int, label: LabelDef) -> hd.seg.SegmentDescription:
    """Segment ``number`` for ``label``: SNOMED CT where the name is a plain lesion word, else the private code."""
    snomed = SNOMED_TYPES.get(label.name.strip().casefold())
    # LO holds 64 characters and reads a backslash as a value separator; label names may have either.
    text = label.name.replace("\\", "/")[:LO_MAX]
    if snomed is not None:
        category, kind = SNOMED_CATEGORY, snomed
    else:
        # Made afresh per segment: a CodedConcept is a Dataset, and one object shared between
        # sequences of several SEGs would be one mutable item in all of them.
        category = hd.sr.CodedConcept(value="LABEL", scheme_designator=PRIVATE_SCHEME, meaning="Annotation label")
        kind = hd.sr.CodedConcept(value=str(label.index), scheme_designator=PRIVATE_SCHEME, meaning=text)
    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=text,
        segmented_property_category=category,
        segmented_property_type=kind,
        # The segments are readers' annotations; the manifest does not say whether a model proposed them.
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        display_color=_color(label.color),
    )


def _color(value: str) -> hd.color.CIELabColor | None:
    """The label's "#rrggbb" as CIELab, or None (no recommended colour) when it is not that shape."""
    text = value.strip().removeprefix("#")
    if len(text) != 6:
        return None
    try:
        red, green, blue = (int(text[i : i + 2], 16) for i in (0, 2, 4))
    except ValueError:
        return None
    return hd.color.CIELabColor.from_rgb(red, green, blue)


def _private_scheme() -> Dataset:
    item = Dataset()
    item.CodingSchemeDesignator = PRIVATE_SCHEME
    item.CodingSchemeName = "Workbench label schema (code value: the label's index in the version)"
    item.CodingSchemeResponsibleOrganization = "Workbench"
    return item


def derived_uid(version_id: str, sample_key: str, purpose: str) -> str:
    """A ``2.25`` UID from sha256 of (version, sample, purpose): stable across exports, distinct otherwise.

    PS3.5 B.2 reserves the 2.25 root for UUIDs, so the first 128 bits are made an RFC 9562
    version-8 (hash-based, custom) UUID by setting its version and variant bits.
    """
    digest = hashlib.sha256(canonical_json([version_id, sample_key, purpose])).digest()
    value = int.from_bytes(digest[:16], "big")
    value = (value & ~(0xF << 76)) | (0x8 << 76)  # version 8
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # variant RFC 9562
    return f"2.25.{uuid.UUID(int=value).int}"
