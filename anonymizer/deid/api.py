"""``deidentify``: one instance in, a new de-identified instance and an audit trail out."""

from __future__ import annotations

from pydicom import DataElement, Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

from .codec import Frames, decode_frames, store_frames
from .engine import Walker
from .errors import PixelCleaningUnavailable
from .freetext import vocabulary
from .identifiers import collect
from .keys import PseudonymKeys
from .options import DeidOptions
from .pixels import TextDetector, is_at_risk
from .profile import load_profile
from .render import black_out, find_text_regions
from .result import AttributeAction, DeidResult, Identity, Pseudonyms

IMPLEMENTATION_VERSION_NAME = "WB_DEID_1_0"
_LONGITUDINAL = {"full": "UNMODIFIED", "shift": "MODIFIED", "year": "MODIFIED", "remove": "REMOVED"}


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    return "" if value is None else str(value).strip()


def _identity(ds: Dataset) -> Identity:
    return Identity(
        patient_id=_text(ds, "PatientID"),
        patient_name=_text(ds, "PatientName"),
        birth_date=_text(ds, "PatientBirthDate"),
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        accession_number=_text(ds, "AccessionNumber"),
        series_instance_uid=_text(ds, "SeriesInstanceUID"),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
    )


def _pseudonyms(identity: Identity, keys: PseudonymKeys, retain_uids: bool) -> Pseudonyms:
    def uid(value: str) -> str:
        return value if retain_uids or not value else keys.uid(value)

    return Pseudonyms(
        patient_id=keys.patient_id(identity.patient_id),
        study_instance_uid=uid(identity.study_instance_uid),
        series_instance_uid=uid(identity.series_instance_uid),
        sop_instance_uid=uid(identity.sop_instance_uid),
        accession_number=keys.accession(identity.accession_number) if identity.accession_number else "",
        date_shift_days=keys.date_shift_days(identity.patient_id),
    )


def _mark(out: Dataset, src: Dataset, options: DeidOptions, keys: PseudonymKeys, pseudo: Pseudonyms) -> None:
    """Write the pseudonyms and the PS3.15 attributes describing what was done.

    Elements are built from their tags and VRs directly: setting them by keyword looks each
    keyword up in the dictionary, a cost paid on every file.
    """
    marks = [
        (0x00100020, "LO", pseudo.patient_id),  # Patient ID
        (0x00100010, "PN", keys.patient_name(_text(src, "PatientID"))),  # Patient's Name
        (0x00080050, "SH", pseudo.accession_number),  # Accession Number
        (0x00120062, "CS", "YES"),  # Patient Identity Removed
        (0x00120063, "LO", list(options.method_text())),  # De-identification Method
        (0x00280303, "CS", _LONGITUDINAL[options.date_mode]),  # Longitudinal Temporal Information Modified
    ]
    if 0x00200010 in src:  # Study ID
        marks.append((0x00200010, "SH", ""))
    for tag, vr, value in marks:
        out.add(DataElement(tag, vr, value))
    items = []
    for value, meaning in options.method_codes():
        item = Dataset()
        item.add(DataElement(0x00080100, "SH", value))  # Code Value
        item.add(DataElement(0x00080102, "SH", "DCM"))  # Coding Scheme Designator
        item.add(DataElement(0x00080104, "LO", meaning))  # Code Meaning
        items.append(item)
    out.add(DataElement(0x00120064, "SQ", Sequence(items)))  # De-identification Method Code Sequence


def _file_meta(out: Dataset, src: Dataset) -> None:
    old = getattr(src, "file_meta", None) or FileMetaDataset()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = out.get("SOPClassUID", old.get("MediaStorageSOPClassUID", ""))
    meta.MediaStorageSOPInstanceUID = out.get("SOPInstanceUID", "")
    meta.TransferSyntaxUID = old.get("TransferSyntaxUID", ExplicitVRLittleEndian)
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    out.file_meta = meta


def _clean_pixels(out: Dataset, detector: TextDetector | None) -> tuple[tuple[int, int, int, int], ...]:
    """Detect burned-in text and black it out; the pixel data changes only where text was found.

    When nothing is found, the original pixel bytes and transfer syntax stay untouched.
    """
    if detector is None:
        raise PixelCleaningUnavailable("image is at risk of burned-in text and no text detector is available")
    # Detection runs on what a viewer shows; the blackout is written in stored values.
    frames = decode_frames(out)
    boxes = find_text_regions(frames.data, out, frames.photometric, detector)
    if boxes:
        cleaned, stored_as = black_out(frames.data, out, frames.photometric, boxes)  # colour comes back RGB
        store_frames(out, Frames(cleaned, stored_as))
    out.BurnedInAnnotation = "NO"
    return tuple(boxes)


def deidentify(
    ds: Dataset,
    *,
    options: DeidOptions,
    keys: PseudonymKeys,
    text_detector: TextDetector | None = None,
) -> DeidResult:
    """De-identify one instance without touching ``ds``.

    Raises PixelCleaningUnavailable when the image is at risk of burned-in text, pixel cleaning
    is on and ``text_detector`` is None; PixelDecodeError when such pixels cannot be decoded.
    Both subclass DeidError: the caller quarantines the instance.
    """
    identity = _identity(ds)
    pseudo = _pseudonyms(identity, keys, options.retain_uids)
    words = vocabulary(options.extra_vocabulary)
    identifiers = collect(ds, options, words)
    walker = Walker(
        options=options,
        keys=keys,
        profile=load_profile(),
        shift_days=pseudo.date_shift_days,
        identifiers=identifiers,
        vocabulary=words,
    )
    out = walker.walk(ds)
    _mark(out, ds, options, keys, pseudo)
    _file_meta(out, ds)
    regions: tuple[tuple[int, int, int, int], ...] = ()
    cleaned = options.clean_pixel_data and is_at_risk(ds, ocr_all_images=options.ocr_all_images)
    if cleaned:
        regions = _clean_pixels(out, text_detector)
    return DeidResult(
        dataset=out,
        actions=dict(walker.counts),
        attributes=tuple(AttributeAction(p, k, a) for p, k, a in walker.records),
        pixel_cleaned=cleaned,
        text_regions=regions,
        identity=identity,
        pseudonyms=pseudo,
        text_removals=tuple(walker.text_removals),
        identifiers=identifiers,
    )
