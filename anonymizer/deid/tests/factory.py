"""Synthetic DICOM with planted PHI, for tests and demo data. No real patient data.

``make_ct`` plants identifying values everywhere the profile must reach (names, IDs, dates,
address, phone, institution, physicians, nested sequences three levels deep, a private group,
an overlay and a curve group, SR-like content). ``make_us`` draws burned-in text into an RGB
ultrasound frame (optionally multi-frame).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
US_STORAGE = "1.2.840.10008.5.1.4.1.1.6.1"
US_MF_STORAGE = "1.2.840.10008.5.1.4.1.1.3.1"
PLANTED_TEXT = "DOE^JOHN 12345678"


def _base(sop_class: str, *, patient_name: str, patient_id: str, study_uid: str | None, study_date: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.SourceApplicationEntityTitle = "HOSPITAL_PACS"
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19280305"
    ds.PatientSex = "F"
    ds.PatientAge = "095Y"
    ds.PatientWeight = "61"
    ds.PatientAddress = "42 Wallaby Way, Sydney"
    ds.PatientTelephoneNumbers = "555-0134-777"
    ds.OtherPatientIDs = "MRN-998877"
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.StudyDate = study_date
    ds.SeriesDate = study_date
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC20240001"
    ds.StudyID = "STUDY77"
    ds.InstitutionName = "Saint Example Hospital"
    ds.InstitutionAddress = "1 Hospital Road, Springfield"
    ds.ReferringPhysicianName = "HOUSE^GREGORY"
    ds.PerformingPhysicianName = "WILSON^JAMES"
    ds.OperatorsName = "CHASE^ROBERT"
    ds.StationName = "CTSTATION01"
    ds.DeviceSerialNumber = "SN-4455-XYZ"
    ds.Manufacturer = "WORKBENCH-SYNTHETIC"
    ds.StudyDescription = f"CT CHEST for {patient_name.split('^')[0]}"
    ds.SeriesDescription = "AXIAL 5MM"
    return ds


def _nested_sequences(patient_name: str, referenced_uid: str) -> Sequence:
    """Three levels deep: names and UIDs at the bottom."""
    level3 = Dataset()
    level3.PersonName = patient_name
    level3.ReferencedSOPClassUID = CT_STORAGE
    level3.ReferencedSOPInstanceUID = referenced_uid
    level2 = Dataset()
    level2.ReferencedImageSequence = Sequence([level3])
    level2.EvaluatorName = "CAMERON^ALLISON"  # unlisted PN: removed by defence in depth
    level1 = Dataset()
    level1.ReferencedSeriesSequence = Sequence([level2])
    level1.SeriesInstanceUID = generate_uid()
    return Sequence([level1])


def _content_sequence(patient_name: str) -> Sequence:
    text = Dataset()
    text.ValueType = "TEXT"
    text.TextValue = f"Patient {patient_name} seen by Dr House, MRN-998877"
    person = Dataset()
    person.ValueType = "PNAME"
    person.PersonName = patient_name
    when = Dataset()
    when.ValueType = "DATE"
    when.Date = "20240115"
    return Sequence([text, person, when])


def _plant_private_overlay_curve(ds: Dataset, patient_name: str) -> None:
    ds.add_new(0x00090010, "LO", "ACME PRIVATE")
    ds.add_new(0x00091001, "LO", patient_name)
    ds.add_new(0x00190010, "LO", "SIEMENS MR HEADER")
    ds.add_new(0x0019100C, "IS", "1000")  # allow-listed b-value
    ds.add_new(0x60000010, "US", 512)
    ds.add_new(0x60000011, "US", 512)
    ds.add_new(0x60000022, "LO", f"overlay of {patient_name}")
    ds.add_new(0x60003000, "OW", b"\x01\x00" * 64)
    ds.add_new(0x60004000, "LT", "overlay comment")
    ds.add_new(0x50000005, "US", 1)
    ds.add_new(0x50003000, "OW", patient_name.encode("ascii").ljust(16, b" "))


def make_ct(
    *,
    patient_name: str = "DOE^JOHN",
    patient_id: str = "PID12345",
    study_uid: str | None = None,
    study_date: str = "20240115",
    referenced_uid: str | None = None,
) -> Dataset:
    """A 512x512 int16 CT slice with PHI planted in every place the profile must reach."""
    ds = _base(CT_STORAGE, patient_name=patient_name, patient_id=patient_id, study_uid=study_uid, study_date=study_date)
    ds.Modality = "CT"
    ds.ReferencedStudySequence = Sequence()
    ds.SourceImageSequence = _nested_sequences(patient_name, referenced_uid or generate_uid())
    ds.ContentSequence = _content_sequence(patient_name)
    ds.ImageComments = f"scan of {patient_name.replace('^', ' ')}"
    ds.AcquisitionDateTime = f"{study_date}101530.123456+0100"
    ds.InstanceCreationDate = study_date  # not in the exported table: covered as a date
    _plant_private_overlay_curve(ds, patient_name)
    ds.Rows = ds.Columns = 512
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
    pixels = (np.indices((512, 512)).sum(axis=0) % 2048 - 1024).astype(np.int16)
    ds.PixelData = pixels.tobytes()
    return ds


def _us_frame(text: str, rows: int, cols: int) -> np.ndarray:
    image = Image.new("RGB", (cols, rows), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((cols // 4, rows // 3, 3 * cols // 4, rows - 20), fill=(70, 70, 70))
    draw.text((40, 40), text, fill=(255, 255, 255), font=ImageFont.load_default(size=28))
    return np.asarray(image)


def make_us(
    *,
    patient_name: str = "DOE^JOHN",
    patient_id: str = "PID12345",
    study_uid: str | None = None,
    study_date: str = "20240115",
    frames: int = 1,
    text: str = PLANTED_TEXT,
) -> Dataset:
    """RGB 480x640 ultrasound with burned-in text at (40, 40) and BurnedInAnnotation=YES."""
    sop = US_STORAGE if frames == 1 else US_MF_STORAGE
    ds = _base(sop, patient_name=patient_name, patient_id=patient_id, study_uid=study_uid, study_date=study_date)
    ds.Modality = "US"
    ds.BurnedInAnnotation = "YES"
    ds.Rows, ds.Columns = 480, 640
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    frame = _us_frame(text, 480, 640)
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = np.stack([frame] * frames).tobytes()
    return ds
