"""The combined profile codes follow the attribute's type in the instance's IOD (PS3.3)."""

from __future__ import annotations

from pydicom import Dataset
from pydicom.sequence import Sequence

from anonymizer.deid import DeidOptions
from anonymizer.deid.tests.conftest_helpers import action_of, run
from anonymizer.deid.tests.factory import make_ct

ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
RT_PLAN = "1.2.840.10008.5.1.4.1.1.481.5"
NO_DATES = DeidOptions(retain_longitudinal_modified_dates=False)


def _as(sop_class: str) -> Dataset:
    ds = make_ct()
    ds.SOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    return ds


def test_type1_gets_a_dummy_type3_is_removed():
    enhanced = run(_as(ENHANCED_MR))
    assert enhanced.dataset.DeviceSerialNumber == "ANONYMIZED"  # type 1, Enhanced General Equipment
    assert action_of(enhanced, "(0018,1000)") == "D"
    ct = run(make_ct())
    assert "DeviceSerialNumber" not in ct.dataset  # type 3 in General Equipment
    assert action_of(ct, "(0018,1000)") == "X"


def test_type2_is_emptied_not_removed():
    plan = _as(RT_PLAN)
    plan.RTPlanDate, plan.RTPlanTime = "20240115", "101500"  # X/D, type 2
    plan.OperatorsName = "CHASE^ROBERT"  # X/Z/D, type 2 in the RT General Plan module
    out = run(plan, NO_DATES).dataset
    assert out.RTPlanDate == "19000101" and out.RTPlanTime == "000000"
    assert "OperatorsName" in out and not out.OperatorsName
    ct = run(make_ct(), NO_DATES).dataset
    assert "OperatorsName" not in ct and "SeriesDate" not in ct  # type 3 in CT


def test_unknown_sop_class_keeps_attributes_present():
    out = run(_as("1.2.826.0.1.3680043.10.999.1"), NO_DATES).dataset
    assert "DeviceSerialNumber" in out and not out.DeviceSerialNumber  # X/Z/D -> Z
    assert "SeriesDate" not in out  # X/D -> X


STRUCTURE_SET = "1.2.840.10008.5.1.4.1.1.481.3"


def _roi_creator() -> Dataset:
    person_code = Dataset()
    person_code.CodeValue = "EMP-77321"
    person_code.CodingSchemeDesignator = "L"
    person_code.CodeMeaning = "CHASE^ROBERT"
    creator = Dataset()
    creator.PersonIdentificationCodeSequence = Sequence([person_code])  # D
    creator.InstitutionName = "Saint Example Hospital"  # X/Z/D, type 2 here
    creator.InstitutionCodeSequence = Sequence([Dataset()])  # X/Z/D, type 2 here
    creator.InstitutionCodeSequence[0].CodeValue = "INST-0042"
    creator.StationName = "CTSTATION01"  # X/Z/D, type 2C here
    creator.DeviceSerialNumber = "SN-4455-XYZ"  # not in this item's macro: removed
    roi = Dataset()
    roi.ROINumber = 1
    roi.ROICreatorSequence = Sequence([creator])
    return roi


def test_nested_attributes_use_their_own_path_type():
    ds = _as(STRUCTURE_SET)
    ds.StructureSetROISequence = Sequence([_roi_creator()])
    result = run(ds)
    creator = result.dataset.StructureSetROISequence[0].ROICreatorSequence[0]
    assert "InstitutionName" in creator and not creator.InstitutionName
    assert "StationName" in creator and not creator.StationName
    assert "InstitutionCodeSequence" in creator and len(creator.InstitutionCodeSequence) == 0
    assert "DeviceSerialNumber" not in creator
    assert action_of(result, "(3006,0020)[0].(3006,004D)[0].(0008,0080)") == "Z"


def test_dummy_of_a_code_sequence_is_one_anonymous_code():
    ds = _as(STRUCTURE_SET)
    ds.StructureSetROISequence = Sequence([_roi_creator()])
    out = run(ds).dataset
    codes = out.StructureSetROISequence[0].ROICreatorSequence[0].PersonIdentificationCodeSequence
    assert len(codes) == 1 and codes[0].CodeValue == "ANONYMIZED" and codes[0].CodingSchemeDesignator == "99WBDEID"
    text = str(out)
    assert "EMP-77321" not in text and "INST-0042" not in text and "CHASE" not in text


def test_unparseable_date_falls_back_to_the_basic_action():
    ds = make_ct()
    ds.StudyDate = "1997.04.24"  # ACR-NEMA style: cannot be shifted
    ds.ContentDate = "1997.04.24"  # Z/D, type 2C in CT
    ds.SeriesDate = "1997.04.24"  # X/D, type 3 in CT
    out = run(ds).dataset
    assert "StudyDate" in out and not out.StudyDate  # Z: type 2, emptied
    assert "ContentDate" in out and not out.ContentDate
    assert "SeriesDate" not in out
    # Nowhere but in UIDs, whose random digits may hold "1997" by chance (a flaky check before).
    assert not [e.keyword for e in out.iterall() if e.VR not in ("UI", "SQ") and "1997" in str(e.value)]


BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"


def _sr() -> Dataset:
    ds = _as(BASIC_TEXT_SR)
    observer = Dataset()
    observer.VerifyingObserverName = "HOUSE^GREGORY"
    observer.VerificationDateTime = "20240115101500"  # not in the profile table; type 1 here
    ds.VerifyingObserverSequence = Sequence([observer])
    ds.ContentDate, ds.ContentTime = "20240115", "101500"  # Z/D, type 1 in SR Document General
    return ds


def test_removed_dates_keep_type1_dates_as_dummies():
    out = run(_sr(), NO_DATES).dataset
    assert out.VerifyingObserverSequence[0].VerificationDateTime == "19000101000000"
    assert out.ContentDate == "19000101" and out.ContentTime == "000000"
    assert "InstanceCreationDate" not in out  # unlisted, type 3: removed
    assert "20240115" not in str(out)


def test_year_only_time_of_a_type1_attribute_gets_a_dummy():
    out = run(_sr(), DeidOptions.safe_harbor_strict()).dataset
    assert out.ContentTime == "000000" and out.ContentDate == "20240101"
    ct = run(make_ct(), DeidOptions.safe_harbor_strict()).dataset
    assert "StudyTime" in ct and not ct.StudyTime  # Z: type 2, emptied
