from __future__ import annotations

from datetime import date

import pydicom
import pytest
from pydicom.data import get_testdata_file

from anonymizer.deid import DeidOptions, verify
from anonymizer.deid.tests.conftest_helpers import KEYS, OTHER_KEYS, action_of, run
from anonymizer.deid.tests.factory import make_ct
from anonymizer.deid.values import shift_da, shift_dt

PHI = [
    "DOE",
    "JOHN",
    "PID12345",
    "Wallaby",
    "555-0134",
    "MRN-998877",
    "Saint Example",
    "HOUSE",
    "WILSON",
    "CHASE",
    "CAMERON",
    "ACC20240001",
    "STUDY77",
    "19280305",
]


def all_strings(ds) -> str:
    parts = []
    for elem in ds.iterall():
        if elem.VR not in ("SQ", "OB", "OW"):
            parts.append(str(elem.value))
    parts.extend(str(e.value) for e in ds.file_meta)
    return " | ".join(parts)


def test_input_not_mutated_and_no_planted_phi():
    ct = make_ct()
    before = ct.to_json_dict()
    out = run(ct).dataset
    assert ct.to_json_dict() == before
    text = all_strings(out)
    for value in PHI:
        assert value.lower() not in text.lower(), value


def test_identity_and_pseudonyms():
    ct = make_ct()
    r = run(ct)
    assert r.identity.patient_id == "PID12345" and r.identity.birth_date == "19280305"
    assert "PID" not in repr(r.identity)
    out = r.dataset
    assert out.PatientID == r.pseudonyms.patient_id == KEYS.patient_id("PID12345")
    assert out.PatientName == KEYS.patient_name("PID12345")
    assert out.AccessionNumber == KEYS.accession("ACC20240001")
    assert out.StudyID == "" and out.PatientBirthDate in (None, "")
    assert out.StudyInstanceUID == KEYS.uid(ct.StudyInstanceUID) == r.pseudonyms.study_instance_uid
    assert out.PatientIdentityRemoved == "YES"
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"
    assert [i.CodeValue for i in out.DeidentificationMethodCodeSequence][0] == "113100"
    assert all(i.CodingSchemeDesignator == "DCM" for i in out.DeidentificationMethodCodeSequence)


def test_file_meta_rewritten():
    out = run(make_ct()).dataset
    meta = out.file_meta
    assert meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert meta.MediaStorageSOPClassUID == out.SOPClassUID
    assert "SourceApplicationEntityTitle" not in meta
    assert meta.ImplementationVersionName == "WB_DEID_1_0"


def test_action_classes_recorded():
    r = run(make_ct())
    assert action_of(r, "(0010,0010)") == "Z"  # table action; the pseudonym is written after
    assert action_of(r, "(0008,1050)") == "X"
    assert action_of(r, "(0008,0080)") == "X"  # X/Z/D, type 3 in the CT Image IOD
    assert action_of(r, "(0020,000D)") == "U"
    assert action_of(r, "(0008,1030)") == "C"
    assert action_of(r, "(0008,0060)") == "K"
    assert action_of(r, "(0040,A730)[1].(0040,A123)") == "D"
    assert set(r.actions) >= {"K", "X", "Z", "U", "C", "D"}
    assert all("DOE" not in a.path for a in r.attributes)


def test_nested_depth_three():
    ref = "1.2.3.4.5.6.7"
    out = run(make_ct(referenced_uid=ref)).dataset
    leaf = out.SourceImageSequence[0].ReferencedSeriesSequence[0].ReferencedImageSequence[0]
    assert leaf.ReferencedSOPInstanceUID == KEYS.uid(ref)
    assert leaf.ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.2"  # well-known: kept
    assert leaf.PersonName == "ANONYMOUS"
    assert "EvaluatorName" not in out.SourceImageSequence[0].ReferencedSeriesSequence[0]


def test_referenced_uid_matches_referenced_instance():
    first = make_ct()
    second = make_ct(referenced_uid=first.SOPInstanceUID)
    out1, out2 = run(first).dataset, run(second).dataset
    leaf = out2.SourceImageSequence[0].ReferencedSeriesSequence[0].ReferencedImageSequence[0]
    assert leaf.ReferencedSOPInstanceUID == out1.SOPInstanceUID


def test_retain_uids():
    ct = make_ct()
    out = run(ct, DeidOptions(retain_uids=True)).dataset
    assert out.StudyInstanceUID == ct.StudyInstanceUID and out.SOPInstanceUID == ct.SOPInstanceUID


def test_private_tags_removed_or_allow_listed():
    ct = make_ct()
    assert not any(e.tag.is_private for e in run(ct).dataset)
    out = run(ct, DeidOptions(retain_safe_private=True)).dataset
    private = {int(e.tag) for e in out if e.tag.is_private}
    assert private == {0x00190010, 0x0019100C}


def test_overlays_and_curves_removed_with_any_graphics_option():
    for clean in (True, False):
        out = run(make_ct(), DeidOptions(clean_graphics=clean)).dataset
        assert not [e for e in out if 0x5000 <= e.tag.group <= 0x60FF]


def test_structured_content():
    out = run(make_ct()).dataset
    text, person, when = out.ContentSequence
    assert text.TextValue == "ANONYMIZED" and person.PersonName == "ANONYMOUS"
    assert when.Date == shift_da("20240115", KEYS.date_shift_days("PID12345"))
    off = run(make_ct(), DeidOptions(clean_structured_content=False)).dataset
    assert len(off.ContentSequence) == 0


def test_descriptors_cleaned_or_removed():
    out = run(make_ct()).dataset
    assert out.StudyDescription == "CT CHEST for" and out.ImageComments == "scan of"
    assert out.SeriesDescription == "AXIAL 5MM"
    off = run(make_ct(), DeidOptions(clean_descriptors=False)).dataset
    assert "StudyDescription" not in off and "ImageComments" not in off


def test_device_and_institution_options():
    on = run(make_ct(), DeidOptions(retain_device_identity=True, retain_institution_identity=True)).dataset
    assert on.DeviceSerialNumber == "SN-4455-XYZ" and on.InstitutionName == "Saint Example Hospital"
    off = run(make_ct()).dataset
    assert not off.get("DeviceSerialNumber") and not off.get("InstitutionName") and "InstitutionAddress" not in off


def test_age_capped_and_characteristics_option():
    out = run(make_ct()).dataset
    assert out.PatientAge == "090Y" and out.PatientSex == "F" and out.PatientWeight == 61
    ct = make_ct()
    ct.PatientAge = "006M"
    assert run(ct).dataset.PatientAge == "006M"
    off = run(make_ct(), DeidOptions(retain_patient_characteristics=False)).dataset
    assert "PatientAge" not in off and "PatientWeight" not in off and not off.PatientSex


def _days(a: str, b: str) -> int:
    return (date.fromisoformat(f"{b[:4]}-{b[4:6]}-{b[6:8]}") - date.fromisoformat(f"{a[:4]}-{a[4:6]}-{a[6:8]}")).days


def test_date_shift_keeps_intervals_and_differs_between_patients():
    s1 = run(make_ct(study_date="20240115")).dataset.StudyDate
    s2 = run(make_ct(study_date="20240320")).dataset.StudyDate
    assert _days(s1, s2) == _days("20240115", "20240320")
    assert s1 != "20240115"
    other = run(make_ct(patient_id="OTHER-99", study_date="20240115")).dataset.StudyDate
    assert other != s1


def test_datetime_shift_and_ranges():
    assert shift_dt("20240115101530.123456+0100", -10) == "20240105101530.123456+0100"
    assert shift_dt("202401", -40) == "202311"
    assert shift_da("20240110-20240120", -1) == "20240109-20240119"
    assert shift_da("garbage", 5) is None
    out = run(make_ct()).dataset
    shifted = shift_dt("20240115101530.123456+0100", KEYS.date_shift_days("PID12345"))
    assert out.AcquisitionDateTime == shifted
    assert out.InstanceCreationDate == out.StudyDate  # unlisted date handled the same way


def test_year_only_and_full_and_removed_dates():
    strict = run(make_ct(), DeidOptions.safe_harbor_strict()).dataset
    assert strict.StudyDate == "20240101" and strict.AcquisitionDateTime == "20240101000000"
    assert not strict.StudyTime and strict.LongitudinalTemporalInformationModified == "MODIFIED"
    full = run(make_ct(), DeidOptions(retain_longitudinal_full_dates=True)).dataset
    assert full.StudyDate == "20240115" and full.LongitudinalTemporalInformationModified == "UNMODIFIED"
    removed = run(make_ct(), DeidOptions(retain_longitudinal_modified_dates=False)).dataset
    assert not removed.StudyDate and "SeriesDate" not in removed
    assert removed.LongitudinalTemporalInformationModified == "REMOVED"


def test_pseudonyms_differ_across_secrets():
    ct = make_ct()
    a = run(ct).dataset
    from anonymizer.deid import deidentify

    b = deidentify(ct, options=DeidOptions(), keys=OTHER_KEYS).dataset
    assert a.PatientID != b.PatientID and a.SOPInstanceUID != b.SOPInstanceUID


def test_roundtrip_write(tmp_path):
    out = run(make_ct()).dataset
    path = tmp_path / "x.dcm"
    out.save_as(path, enforce_file_format=True)
    back = pydicom.dcmread(path)
    assert back.PatientIdentityRemoved == "YES" and back.pixel_array.shape == (512, 512)


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "test-SR.dcm", "MR_small_bigendian.dcm"])
def test_real_files_verify_clean(name):
    ds = pydicom.dcmread(get_testdata_file(name))
    r = run(ds)
    assert verify(ds, r.dataset, options=DeidOptions()) == []
    assert r.dataset.PatientID != ds.PatientID
