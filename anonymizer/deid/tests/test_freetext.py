"""Free text under action C: only known non-identifying tokens survive, at every depth."""

from __future__ import annotations

import pydicom
import pytest
from pydicom import Dataset
from pydicom.data import get_testdata_file
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.sequence import Sequence

from anonymizer.deid import DeidOptions, verify
from anonymizer.deid.freetext import clean_free_text, shipped_vocabulary, vocabulary, word_allowed
from anonymizer.deid.identifiers import FileIdentifiers
from anonymizer.deid.profile import effective_action, load_profile
from anonymizer.deid.result import REMOVAL_KINDS
from anonymizer.deid.tests.conftest_helpers import run
from anonymizer.deid.tests.factory import make_ct

SAFE = "AX T1 5mm post contrast"
UNSEEN = (
    "Dr. Miller referred, MRN 4471823, ext. rec A77-1234, call +1 (555) 123-4567 or 555-0199, "
    "mail jane.roe@example.org, seen 2024-03-01, 01/03/2024, 1.3.2024, 20240301, "
    "March 1, 2024, 1 Mar 2024 at 14:32"
)
FORBIDDEN = ("miller", "4471823", "a77", "1234", "555", "0199", "@", "roe", "example", "2024", "14:32", "mar")
TEXT_VRS = ("LO", "LT", "SH", "ST", "UT", "UC")
NO_IDS = FileIdentifiers()


def _cleaned_text_tags() -> list[int]:
    profile, options = load_profile(), DeidOptions()
    tags = []
    for tag, rule in sorted(profile.exact.items()):
        if effective_action(rule, options, tag) != "C" or rule.is_date_rule:
            continue
        try:
            if dictionary_VR(tag) in TEXT_VRS:
                tags.append(tag)
        except KeyError:
            continue
    return tags


CLEANED_TAGS = _cleaned_text_tags()


def _assert_clean(value: str) -> None:
    low = value.lower()
    for word in FORBIDDEN:
        assert word not in low, (word, value)


def test_every_profile_row_with_clean_on_text_is_exercised():
    keywords = {keyword_for_tag(t) for t in CLEANED_TAGS}
    assert {"StudyDescription", "SeriesDescription", "ImageComments", "AdditionalPatientHistory"} <= keywords
    assert {"RequestedProcedureDescription", "PerformedProcedureStepDescription"} <= keywords
    assert len(CLEANED_TAGS) > 50


@pytest.mark.parametrize("tag", CLEANED_TAGS, ids=[keyword_for_tag(t) for t in CLEANED_TAGS])
def test_unseen_identifiers_removed_in_every_cleaned_attribute_at_every_depth(tag):
    ds = make_ct()
    vr = dictionary_VR(tag)
    ds.add_new(tag, vr, f"{SAFE} {UNSEEN}")
    item = Dataset()
    item.add_new(tag, vr, f"{UNSEEN} {SAFE}")
    inner = Dataset()
    inner.add_new(tag, vr, UNSEEN)
    item.RequestAttributesSequence = Sequence([inner])
    ds.RequestAttributesSequence = Sequence([item])
    result = run(ds)
    out = result.dataset
    top = str(out[tag].value)
    assert top.startswith(SAFE)
    _assert_clean(top)
    deep = out.RequestAttributesSequence[0]
    assert tag not in deep or SAFE in str(deep[tag].value)
    for elem in (deep.get(tag), deep.RequestAttributesSequence[0].get(tag)):
        if elem is not None:
            _assert_clean(str(elem.value))
    paths = {r.path for r in result.text_removals}
    assert f"({tag >> 16:04X},{tag & 0xFFFF:04X})" in paths
    assert any(p.startswith("(0040,0275)[0].") for p in paths)
    assert verify(ds, out, options=DeidOptions()) == []


def test_removals_are_recorded_by_kind_never_by_value():
    ds = make_ct()
    ds.ImageComments = UNSEEN
    removals = [r for r in run(ds).text_removals if r.keyword == "ImageComments"]
    kinds = {r.kind for r in removals}
    assert {"date", "time", "phone number", "e-mail address", "identifier", "unrecognised word"} <= kinds
    assert kinds <= set(REMOVAL_KINDS)
    assert all(r.path == "(0020,4000)" for r in removals)


@pytest.mark.parametrize(
    "text",
    [
        SAFE,
        "CT CHEST W/O CONTRAST",
        "Thorax^1HCT_Lung (Adult)",
        "SAG T2 FLAIR FS",
        "CTA Head/Neck 0.625mm",
        "120 kV 300 mAs",
        "3D TOF MRA",
        "Head 5.0 H30s",
        "L-SPINE 3 VIEWS",
        "PA and lateral chest",
    ],
)
def test_descriptions_survive_intact(text):
    assert clean_free_text(text, NO_IDS, vocabulary()).text == text


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-01",
        "01/03/2024",
        "1.3.2024",
        "20240301",
        "March 1, 2024",
        "1 Mar 2024",
        "14:32",
        "+1 (555) 123-4567",
        "555-0199",
        "jane.roe@example.org",
        "MRN12345",
        "4471823",
    ],
)
def test_rule_based_removals(text):
    cleaned = clean_free_text(f"CT {text} CHEST", NO_IDS, vocabulary())
    assert cleaned.text == "CT CHEST" and cleaned.removed


def test_ages_over_89_removed_younger_kept():
    words = vocabulary()
    assert clean_free_text("95 yo female", NO_IDS, words).text == "female"
    assert clean_free_text("AX T1 90 y/o", NO_IDS, words).text == "AX T1"
    assert clean_free_text("45 yo male", NO_IDS, words).text == "45 yo male"


def test_cleaning_twice_changes_nothing():
    words = vocabulary()
    for text in (UNSEEN, f"{SAFE} {UNSEEN}", "CT(Miller)chest", "1 Miller Mar 2 x"):
        once = clean_free_text(text, NO_IDS, words).text
        again = clean_free_text(once, NO_IDS, words)
        assert again.text == once and again.removed == ()


def test_a_title_marks_the_next_word_as_a_name_even_if_it_is_a_word():
    words = vocabulary()
    assert clean_free_text("seen by Dr. White for chest", NO_IDS, words).text == "seen by for chest"
    assert clean_free_text("per Dr J. Long, chest", NO_IDS, words).text == "per, chest"
    assert clean_free_text("Mrs Post", NO_IDS, words).removed == ("person name",)
    assert clean_free_text("DR CHEST 2 VIEWS", NO_IDS, words).text == "DR CHEST 2 VIEWS"
    assert clean_free_text("MR BRAIN", NO_IDS, words).text == "MR BRAIN"


def test_separators_stay_readable():
    words = vocabulary()
    assert clean_free_text("Dr. Miller referred", NO_IDS, words).text == "referred"
    assert clean_free_text("Thorax^Miller_Lung (Miller)", NO_IDS, words).text == "Thorax_Lung"
    assert clean_free_text("ext. rec A77-1234", NO_IDS, words).text == ""


def test_numbers_and_units_by_rule_ids_removed():
    words = vocabulary()
    for token in ("5mm", "3.0", "120kV", "2.5", "512x512", "T2", "C7"):
        assert word_allowed(token, words), token
    for token in ("12345", "MRN12345", "A77-1234", "1.2.840.10008", "ID123"):
        assert not word_allowed(token, words), token


def test_vocabulary_has_no_numbers_or_common_names():
    words = shipped_vocabulary()
    assert not any(w.isdigit() for w in words)
    assert {"miller", "smith", "john", "hadlock", "paget"}.isdisjoint(words)
    assert {"axial", "contrast", "chest", "flair", "t1", "mm", "w/o", "lung", "adult"} <= words


def test_extra_vocabulary_extends_the_rule():
    ds = make_ct()
    ds.SeriesDescription = "AX Zebrafish protocol"
    assert run(ds).dataset.SeriesDescription == "AX protocol"
    options = DeidOptions(extra_vocabulary=("zebrafish",))
    out = run(ds, options).dataset
    assert out.SeriesDescription == "AX Zebrafish protocol"
    assert verify(ds, out, options=options) == []


def test_extra_vocabulary_never_keeps_the_files_own_names():
    ds = make_ct(patient_name="ZEBRAFISH^ANNA")
    ds.SeriesDescription = "AX Zebrafish protocol"
    options = DeidOptions(extra_vocabulary=("zebrafish model",))
    out = run(ds, options).dataset
    assert out.SeriesDescription == "AX protocol"
    assert verify(ds, out, options=options) == []


def test_file_identifiers_removed_even_when_vocabulary_words():
    ds = make_ct(patient_name="POST^CHEST")
    ds.ReferringPhysicianName = "LIVER^ANNA"
    ds.BodyPartExamined = "CHEST"  # kept by the profile: not a leak of the name "Chest"
    ds.SeriesDescription = "AX T1 5mm post contrast"
    ds.StudyDescription = "CT CHEST LIVER"
    out = run(ds).dataset
    assert out.SeriesDescription == "AX T1 5mm contrast"
    assert out.StudyDescription == "CT"
    assert out.BodyPartExamined == "CHEST"
    assert verify(ds, out, options=DeidOptions()) == []


def test_request_attributes_physician_named_like_a_word_does_not_quarantine():
    ds = make_ct()
    request = Dataset()
    request.RequestedProcedureDescription = "MR BRAIN POST CONTRAST"
    request.ScheduledProcedureStepDescription = "AX T1 POST"
    ds.RequestAttributesSequence = Sequence([request])
    ds.RequestingPhysician = "POST^ALAN"
    ds.SeriesDescription = "AX T1 5mm post contrast"
    out = run(ds).dataset
    assert out.RequestAttributesSequence[0].RequestedProcedureDescription == "MR BRAIN CONTRAST"
    assert out.SeriesDescription == "AX T1 5mm contrast"
    assert verify(ds, out, options=DeidOptions()) == []


def test_verifier_flags_words_outside_the_vocabulary_and_known_names():
    ds = make_ct(patient_name="POST^ANNA")
    out = run(ds).dataset
    out.SeriesDescription = "AX Miller"
    kinds = {(leak.path, leak.kind) for leak in verify(ds, out, options=DeidOptions())}
    assert ("(0008,103E)", "free text outside the vocabulary") in kinds
    out.SeriesDescription = "AX post contrast"
    kinds = {(leak.path, leak.kind) for leak in verify(ds, out, options=DeidOptions())}
    assert ("(0008,103E)", "identifier from person name") in kinds


def test_measurements_and_enumerated_values_do_not_flag():
    ds = make_ct(patient_name="EDE^5")
    ds.SliceThickness = "5"
    ds.RepetitionTime = "1500"
    ds.StudyID = "1500"
    ds.ImageType = ["DERIVED", "PRIMARY", "PREDECESSOR"]
    out = run(ds).dataset
    assert verify(ds, out, options=DeidOptions()) == []


def test_values_stay_valid_for_their_vr():
    ds = make_ct()
    ds.add_new(0x00102180, "SH", "CT 5mm Miller")  # Occupation, SH
    out = run(ds).dataset
    assert len(out.Occupation) <= 16 and out.Occupation == "CT 5mm"


@pytest.mark.parametrize(
    "name",
    ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "rtdose.dcm", "emri_small.dcm", "test-SR.dcm", "waveform_ecg.dcm"],
)
def test_real_files_no_false_leaks(name):
    ds = pydicom.dcmread(get_testdata_file(name))
    options = DeidOptions(clean_pixel_data=False)
    assert verify(ds, run(ds, options).dataset, options=options) == []


def test_liver_file_no_false_leaks():
    path = get_testdata_file("liver_1frame.dcm")
    if path is None:
        pytest.skip("liver_1frame.dcm needs pydicom-data")
    ds = pydicom.dcmread(path)
    options = DeidOptions(clean_pixel_data=False)
    assert verify(ds, run(ds, options).dataset, options=options) == []


def test_graphic_annotation_text_cleaned_and_verified():
    ds = make_ct()
    text = Dataset()
    text.UnformattedTextValue = "LESION 5mm Miller 555-0199"
    annotation = Dataset()
    annotation.TextObjectSequence = Sequence([text])
    ds.GraphicAnnotationSequence = Sequence([annotation])
    result = run(ds)
    out = result.dataset
    assert out.GraphicAnnotationSequence[0].TextObjectSequence[0].UnformattedTextValue == "LESION 5mm"
    assert any(r.keyword == "UnformattedTextValue" and r.kind == "phone number" for r in result.text_removals)
    assert verify(ds, out, options=DeidOptions()) == []
    out.GraphicAnnotationSequence[0].TextObjectSequence[0].UnformattedTextValue = "LESION Miller"
    leaks = verify(ds, out, options=DeidOptions())
    assert [leak.kind for leak in leaks] == ["free text outside the vocabulary"]


def test_type1_label_keeps_a_value_when_nothing_survives():
    ds = make_ct()
    ds.RTPlanLabel = "MILLER"  # basic action D: a non-zero-length value is required
    ds.StudyDescription = "MILLER"  # basic action X: empty is the honest result
    out = run(ds).dataset
    assert out.RTPlanLabel == "ANONYMIZED"
    assert not out.StudyDescription
    assert verify(ds, out, options=DeidOptions()) == []
