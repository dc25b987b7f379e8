"""The one definition of a file's identifying values, shared by cleaner and verifier."""

from __future__ import annotations

from pydicom import Dataset
from pydicom.sequence import Sequence

from anonymizer.deid import DeidOptions
from anonymizer.deid.freetext import vocabulary
from anonymizer.deid.identifiers import DATE, IDENTIFIER, PERSON, PHONE, PLACE, atoms, collect
from anonymizer.deid.tests.factory import make_ct


def _ids(ds: Dataset, options: DeidOptions | None = None):
    return collect(ds, options or DeidOptions(), vocabulary())


def test_names_of_every_role_at_every_depth():
    ids = _ids(make_ct())
    for name in ("doe", "john", "house", "gregory", "wilson", "chase", "cameron", "allison"):
        assert ids.matches(f"seen by {name.upper()} today") == [PERSON], name
    assert ids.matches("Doe John") == [PERSON]  # the full name as one token sequence
    assert ids.matches("John Doe") == [PERSON, PERSON]  # each component on its own


def test_ids_dates_places_phones():
    ids = _ids(make_ct())
    assert ids.matches("PID12345") == [IDENTIFIER] and ids.matches("pid 12345") == [IDENTIFIER]
    assert ids.matches("ref 998877") == [IDENTIFIER]
    assert ids.matches("ACC20240001") == [IDENTIFIER]
    for written in ("19280305", "1928-03-05", "5.3.1928", "03/05/1928", "March 5, 1928", "5 Mar 1928"):
        assert DATE in ids.matches(written), written
    assert ids.matches("Saint Example Hospital") == [PLACE]
    assert ids.matches("Wallaby") == [PLACE]
    assert ids.matches("555-0134-777") == [PHONE]


def test_whole_tokens_only():
    ds = make_ct(patient_name="EDE^LI")
    ds.ImageType = ["DERIVED", "PREDECESSOR"]
    ids = _ids(ds)
    assert ids.matches("PREDECESSOR") == []
    assert ids.matches("Ede") == [PERSON]
    assert ids.matches("LIVER") == []


def test_ids_made_of_words_are_identifiers_removed_descriptions_are_not():
    ds = make_ct(patient_id="LIVER")
    ds.PatientComments = "chest"  # removed (X) but made of known words only
    ids = _ids(ds, DeidOptions(clean_descriptors=False))
    assert ids.matches("liver") == [IDENTIFIER]
    assert ids.matches("chest") == []


def test_measurement_sized_numbers_are_not_identifiers():
    ds = make_ct(patient_name="DOE^5")
    ds.StudyID = "1500"
    ids = _ids(ds)
    assert ids.matches("5") == [] and ids.matches("1500") == []


def test_names_that_are_words_are_collected_but_kept_values_are_not_reported():
    ds = make_ct()
    ds.ReferringPhysicianName = "CHEST^POST"
    ds.BodyPartExamined = "CHEST"
    item = Dataset()
    item.RequestingPhysician = "LIVER^ANNA"
    ds.RequestAttributesSequence = Sequence([item])
    ids = _ids(ds)
    assert ids.matches("CT CHEST") == [PERSON] and ids.matches("liver") == [PERSON]
    assert ids.matches("CT CHEST", verifier=True) == []  # BodyPartExamined keeps the word
    assert ids.matches("post", verifier=True) == [PERSON]


def test_year_only_first_of_january_is_not_a_date_identifier():
    ds = make_ct(study_date="20000101")
    ids = _ids(ds, DeidOptions.safe_harbor_strict())
    assert DATE not in ids.matches("20000101") and DATE in ids.matches("19280305")


def test_full_dates_kept_are_not_identifiers():
    ids = _ids(make_ct(), DeidOptions(retain_longitudinal_full_dates=True))
    assert DATE not in ids.matches("20240115")


def test_atoms_fold_case_accents_and_leading_zeros():
    assert atoms("MRN-00998877") == ("mrn", "998877")
    assert atoms("Müller") == atoms("MULLER") == ("muller",)
    assert atoms("山田^太郎") == ("山田", "太郎")
    assert atoms("Thorax^1HCT_Lung") == ("thorax", "1", "hct", "lung")


def test_whole_words_for_pseudonyms():
    ids = _ids(make_ct(patient_name="ED^ABE"))
    assert ids.matches("ANON^P046F5ED1C9ABE318") == [PERSON, PERSON]  # runs inside a word
    assert ids.matches("ANON^P046F5ED1C9ABE318", whole_words=True) == []
    assert ids.matches("ANON^ED", whole_words=True) == [PERSON]
    assert IDENTIFIER in ids.matches("PID12345", whole_words=True)
