from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from anonymizer.deid import DeidOptions, InvalidOptions, PseudonymKeys
from anonymizer.deid.profile import CSV_PATH, IOD_TYPES_PATH, attribute_type, effective_action, load_profile

P = load_profile()


def act(tag: int, **opts: bool) -> str:
    return effective_action(P.rule_for(tag), DeidOptions(**opts), tag)


def test_table_has_every_row_and_masks():
    rows = list(csv.DictReader(CSV_PATH.open()))
    assert len(rows) == 460
    assert P.rule_for(0x60024000).name == "Overlay Comments"
    assert P.rule_for(0x601E3000).name == "Overlay Data"
    assert P.rule_for(0x50021234).name == "Curve Data"
    assert P.rule_for(0x00291010).name == "Private attributes"
    assert P.rule_for(0x00280010) is None


@pytest.mark.parametrize(
    ("tag", "opts", "expected"),
    [
        (0x00100010, {}, "Z"),  # Patient's Name
        (0x00081050, {}, "X"),  # Performing Physician's Name
        (0x00200010, {}, "Z"),  # Study ID
        (0x0020000D, {}, "U"),  # Study Instance UID
        (0x0020000D, {"retain_uids": True}, "K"),
        (0x00080080, {}, "Z"),  # Institution Name X/Z/D
        (0x00080080, {"retain_institution_identity": True}, "K"),
        (0x00181000, {}, "Z"),  # Device Serial Number X/Z/D
        (0x00181000, {"retain_device_identity": True}, "K"),
        (0x00080021, {"retain_longitudinal_modified_dates": False}, "X"),  # Series Date X/D
        (0x300A0006, {"retain_longitudinal_modified_dates": False}, "X"),  # RT Plan Date X/D, type unknown
        (0x00080020, {}, "C"),  # Study Date shifted
        (0x00080020, {"retain_longitudinal_full_dates": True}, "K"),
        (0x00080020, {"retain_longitudinal_modified_dates": False}, "Z"),
        (0x00081140, {}, "U"),  # Referenced Image Sequence X/Z/U*
        (0x00081030, {}, "C"),  # Study Description cleaned
        (0x00081030, {"clean_descriptors": False}, "X"),
        (0x00101010, {}, "K"),  # Patient's Age
        (0x00101010, {"retain_patient_characteristics": False}, "X"),
        (0x0040A730, {}, "C"),  # Content Sequence
        (0x0040A730, {"clean_structured_content": False}, "Z"),
        (0x00700001, {"clean_graphics": False}, "D"),
        (0x0040A123, {}, "D"),  # Person Name
        (0x00700084, {}, "Z"),  # Content Creator's Name Z/D
    ],
)
def test_effective_actions(tag, opts, expected):
    assert act(tag, **opts) == expected


CT = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
RT_PLAN = "1.2.840.10008.5.1.4.1.1.481.5"
US = "1.2.840.10008.5.1.4.1.1.6.1"


@pytest.mark.parametrize(
    ("sop_class", "path", "expected"),
    [
        (ENHANCED_MR, [0x00181000], "1"),  # Device Serial Number, Enhanced General Equipment
        (CT, [0x00181000], "3"),  # General Equipment only
        (RT_PLAN, [0x300A0006], "2"),  # RT Plan Date
        (CT, [0x00080023], "2C"),  # Content Date, General Image
        (US, [0x00080023], "2C"),
        (ENHANCED_MR, [0x00080023], "1"),  # Multi-frame Functional Groups
        (CT, [0x00081072, 0x00080080], "1C"),  # Institution Name in Operator Identification
        (CT, [0x00080080], "3"),
        (CT, [0x00100010], "3"),  # not a type-dependent action: not in the table
        ("1.2.3.4", [0x00181000], None),  # unknown SOP class
    ],
)
def test_attribute_types_from_ps33(sop_class, path, expected):
    assert attribute_type(sop_class, path) == expected


@pytest.mark.parametrize(
    ("tag", "kind", "expected"),
    [
        (0x00181000, "1", "D"),  # X/Z/D
        (0x00181000, "1C", "D"),
        (0x00181000, "2", "Z"),
        (0x00181000, "3", "X"),
        (0x00181000, None, "Z"),
        (0x00080023, "1", "D"),  # Z/D
        (0x00080023, "2C", "Z"),
        (0x00080023, "3", "Z"),
        (0x00181030, "1", "D"),  # X/D
        (0x00181030, "2", "D"),
        (0x00181030, "3", "X"),
        (0x00181030, None, "X"),
        (0x00081110, "1", "D"),  # X/Z: a type 1 sequence keeps its (de-identified) items
        (0x00081110, "2", "Z"),
        (0x00081110, "3", "X"),
        (0x00181000, "1", "D"),
    ],
)
def test_combined_codes_follow_attribute_type(tag, kind, expected):
    options = DeidOptions(retain_longitudinal_modified_dates=False, clean_descriptors=False)
    assert effective_action(P.rule_for(tag), options, tag, kind) == expected


def test_options_win_over_attribute_type():
    assert effective_action(P.rule_for(0x00181000), DeidOptions(retain_device_identity=True), 0x00181000, "3") == "K"
    assert effective_action(P.rule_for(0x00080023), DeidOptions(), 0x00080023, "1") == "C"  # dates shifted


def test_iod_types_file_is_generated_from_highdicom(tmp_path):
    sys.path.insert(0, str(CSV_PATH.parent))
    try:
        import generate_iod_types
    finally:
        sys.path.pop(0)
    source = generate_iod_types.default_source_dir()
    out = tmp_path / "types.json"
    assert generate_iod_types.generate(source, out) > 1000
    assert json.loads(out.read_text()) == json.loads(IOD_TYPES_PATH.read_text())


def test_generator_reproduces_csv(tmp_path):
    entries = [
        {"name": "Patient's Name", "tag": "(0010,0010)", "basicProfile": "Z", "id": "00100010"},
        {"name": "Overlay\n\nData", "tag": "(60XX,3000)", "basicProfile": "X", "cleanGraphOpt": "C"},
    ]
    src = tmp_path / "in.json"
    src.write_text(json.dumps(entries))
    sys.path.insert(0, str(CSV_PATH.parent))
    try:
        import generate_profile
    finally:
        sys.path.pop(0)
    out = tmp_path / "out.csv"
    assert generate_profile.generate(src, out) == 2
    rows = list(csv.DictReader(out.open()))
    assert rows[1]["name"] == "Overlay Data" and rows[1]["clean_graphics"] == "C"
    result = subprocess.run([sys.executable, str(CSV_PATH.parent / "generate_profile.py")], capture_output=True)
    assert result.returncode == 2


def test_options_roundtrip_and_codes():
    opts = DeidOptions.safe_harbor_strict()
    assert DeidOptions.from_dict(opts.to_dict()) == opts
    with pytest.raises(ValueError):
        DeidOptions.from_dict({"nope": True})
    with pytest.raises(InvalidOptions):
        DeidOptions.from_dict({"clean_graphics": "yes"})
    codes = [c for c, _ in DeidOptions.research_default().method_codes()]
    assert codes[0] == "113100" and "113107" in codes and "113106" not in codes
    full = [c for c, _ in DeidOptions(retain_longitudinal_full_dates=True, retain_uids=True).method_codes()]
    assert "113106" in full and "113110" in full and "113107" not in full


def test_keys_stable_and_secret_dependent():
    a = PseudonymKeys(b"a" * 16)
    b = PseudonymKeys(b"b" * 16)
    assert a.patient_id("X1") == a.patient_id("X1") != b.patient_id("X1")
    assert a.patient_id("X1").startswith("P") and len(a.patient_id("X1")) == 17
    assert len(a.accession("ACC")) <= 16
    uid = a.uid("1.2.3.4")
    assert uid.startswith("2.25.") and len(uid) <= 64 and uid == a.uid("1.2.3.4") != b.uid("1.2.3.4")
    assert -3650 <= a.date_shift_days("X1") <= -365
    assert a.patient_name("X1") == "ANON^" + a.patient_id("X1")
    with pytest.raises(ValueError):
        PseudonymKeys(b"short")
