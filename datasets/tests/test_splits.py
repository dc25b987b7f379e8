"""Patient-grouped, label-stratified, seeded splits and the leakage check (pure functions)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from datasets.splits import SplitSpec, assign_splits, distribution, leakage


def _cohort(patients: int, seed: int = 1) -> tuple[dict[str, str], dict[str, set[str]]]:
    """Several samples per patient; a third of the patients carry a lesion."""
    rng = random.Random(seed)
    patient_of, labels_of = {}, {}
    for p in range(patients):
        for s in range(rng.randint(1, 4)):
            key = f"1.2.{p}.{s}"
            patient_of[key] = f"PAT{p:03d}"
            labels_of[key] = {"Lesion"} if p % 3 == 0 else set()
    return patient_of, labels_of


def _samples(patient_of: dict[str, str], placed: dict[str, tuple[str, int | None]]) -> list[dict]:
    return [
        {"key": k, "patient": patient_of[k], "split": placed[k][0], "fold": placed[k][1], "annotations": []}
        for k in patient_of
    ]


@pytest.mark.parametrize("seed", range(5))
def test_no_patient_is_on_two_sides_and_ratios_hold(seed: int) -> None:
    patient_of, labels_of = _cohort(60, seed)
    placed = assign_splits(patient_of, labels_of, SplitSpec.from_dict({"seed": seed}))
    assert leakage(_samples(patient_of, placed)) == {}
    split_of: dict[str, str] = {}
    for key, (split, _) in placed.items():
        assert split_of.setdefault(patient_of[key], split) == split
    counts = Counter(split_of.values())
    assert counts == {"train": 42, "validation": 9, "test": 9}
    lesion = Counter(split for p, split in split_of.items() if int(p[3:]) % 3 == 0)
    assert lesion == {"train": 14, "validation": 3, "test": 3}  # stratified: 20 lesion patients, 70/15/15


def test_the_same_seed_gives_the_same_split_and_another_seed_another() -> None:
    patient_of, labels_of = _cohort(40)
    spec = SplitSpec.from_dict({"seed": 3})
    assert assign_splits(patient_of, labels_of, spec) == assign_splits(
        dict(reversed(patient_of.items())), labels_of, spec
    )
    assert assign_splits(patient_of, labels_of, spec) != assign_splits(patient_of, labels_of, SplitSpec(seed=4))


def test_folds_keep_patients_together_and_hold_out_a_test_share() -> None:
    patient_of, labels_of = _cohort(50)
    placed = assign_splits(patient_of, labels_of, SplitSpec.from_dict({"seed": 0, "folds": 5, "test": 0.2}))
    assert leakage(_samples(patient_of, placed)) == {}
    by_patient = {patient_of[k]: v for k, v in placed.items()}
    test = [p for p, (split, fold) in by_patient.items() if split == "test"]
    assert len(test) == 10 and all(by_patient[p][1] is None for p in test)
    folds = Counter(fold for split, fold in by_patient.values() if split == "train")
    assert sorted(folds) == [0, 1, 2, 3, 4] and set(folds.values()) == {8}


def test_leakage_names_a_patient_found_in_two_splits() -> None:
    samples = [
        {"key": "a", "patient": "P1", "split": "train", "fold": None, "annotations": []},
        {"key": "b", "patient": "P1", "split": "test", "fold": None, "annotations": []},
        {"key": "c", "patient": "P2", "split": "test", "fold": None, "annotations": []},
    ]
    assert leakage(samples) == {"P1": ["test", "train"]}


def test_distribution_counts_samples_patients_and_labels_per_split() -> None:
    lesions = [{"label": "Lesion"}, {"label": "Lesion"}]
    samples = [
        {"patient": "P1", "study_uid": "1", "split": "train", "instances": [{}, {}], "annotations": lesions},
        {"patient": "P1", "study_uid": "2", "split": "train", "instances": [{}], "annotations": []},
        {"patient": "P2", "study_uid": "3", "split": "test", "instances": [{}], "annotations": [{"label": "Organ"}]},
    ]
    assert distribution(samples) == {
        "test": {"samples": 1, "patients": 1, "studies": 1, "instances": 1, "labels": {"Organ": 1}},
        "train": {"samples": 2, "patients": 1, "studies": 2, "instances": 3, "labels": {"Lesion": 2}},
    }


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ({"ratios": {"train": 0.5, "test": 0.2}}, "add up to 1"),
        ({"ratios": {"train": 0.5, "holdout": 0.5}}, "maps train, validation and test"),
        ({"ratios": {"train": 0, "test": 1}}, "train share"),
        ({"folds": 1}, "from 2 to 20"),
        ({"folds": 5, "ratios": {"train": 1}}, "not both"),
        ({"seed": -1}, "seed"),
        ({"shuffle": True}, "Unknown split setting"),
    ],
)
def test_bad_specs_say_what_to_fix(value: dict, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        SplitSpec.from_dict(value)
