"""Patient-grouped, label-stratified, seeded splits, and the leakage check. Imports no Django.

All samples of one patient land in the same split (and the same fold), so no patient is ever on
both sides of a train/test boundary. Patients are stratified by their label signature (the set
of labels their samples carry), so every split sees every kind of case in proportion.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

SPLITS = ("train", "validation", "test")
DEFAULT_RATIOS = {"train": 0.7, "validation": 0.15, "test": 0.15}


@dataclass(frozen=True)
class SplitSpec:
    """Either train/validation/test ratios, or k folds (with an optional held-out test share)."""

    seed: int = 0
    ratios: Mapping[str, float] | None = None
    folds: int | None = None
    test: float = 0.0

    @classmethod
    def from_dict(cls, value: Any) -> SplitSpec:
        """Validate an API body; ValueError says what to fix."""
        value = dict(value or {})
        unknown = set(value) - {"seed", "ratios", "folds", "test"}
        if unknown:
            raise ValueError(f"Unknown split setting(s): {', '.join(sorted(unknown))}.")
        seed = value.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
            raise ValueError("split.seed must be an integer from 0 to 2**32-1.")
        folds = value.get("folds")
        if folds is not None:
            if value.get("ratios") is not None:
                raise ValueError("Give either split.ratios or split.folds, not both.")
            if not isinstance(folds, int) or isinstance(folds, bool) or not 2 <= folds <= 20:
                raise ValueError("split.folds must be an integer from 2 to 20.")
            test = value.get("test", 0.0)
            if not isinstance(test, int | float) or not 0 <= test < 1:
                raise ValueError("split.test (the held-out share beside the folds) must be in [0, 1).")
            return cls(seed=seed, folds=folds, test=float(test))
        ratios = value.get("ratios") or DEFAULT_RATIOS
        if not isinstance(ratios, dict) or set(ratios) - set(SPLITS) or not ratios:
            raise ValueError(
                "split.ratios maps train, validation and test to shares, e.g. {'train': 0.8, 'test': 0.2}."
            )
        if any(not isinstance(v, int | float) or v < 0 for v in ratios.values()):
            raise ValueError("split.ratios must be non-negative numbers.")
        total = float(sum(ratios.values()))
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split.ratios must add up to 1 (they add up to {total:g}).")
        if not ratios.get("train"):
            raise ValueError("split.ratios needs a train share above 0.")
        return cls(seed=seed, ratios={k: float(ratios.get(k, 0.0)) for k in SPLITS})

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "ratios": dict(self.ratios) if self.ratios is not None else None,
            "folds": self.folds,
            "test": self.test if self.folds else None,
            "group_by": "patient",
            "stratify_by": "label set",
        }


def _allocate(patients: Mapping[str, str], shares: Mapping[str, float], seed: int, salt: str) -> dict[str, str]:
    """Patients (id -> stratum) to bins in proportion to shares, stratum by stratum.

    Each patient goes to the bin furthest below its share, counting both within its stratum and
    overall; the overall term keeps tiny strata (one patient each) from all landing in the
    largest bin.
    """
    by_stratum: dict[str, list[str]] = defaultdict(list)
    for patient, stratum in sorted(patients.items()):
        by_stratum[stratum].append(patient)
    bins = [name for name, share in shares.items() if share > 0]
    overall = dict.fromkeys(bins, 0)
    out: dict[str, str] = {}
    placed = 0
    for stratum in sorted(by_stratum):
        members = by_stratum[stratum]
        random.Random(f"{seed}:{salt}:{stratum}").shuffle(members)
        local = dict.fromkeys(bins, 0)
        for k, patient in enumerate(members):
            score = {b: (shares[b] * (k + 1) - local[b]) + (shares[b] * (placed + 1) - overall[b]) for b in bins}
            chosen = max(bins, key=lambda b: (score[b], shares[b]))
            out[patient] = chosen
            local[chosen] += 1
            overall[chosen] += 1
            placed += 1
    return out


def assign_splits(
    patient_of: Mapping[str, str], labels_of: Mapping[str, Iterable[str]], spec: SplitSpec
) -> dict[str, tuple[str, int | None]]:
    """Sample key -> (split, fold). ``patient_of``: sample -> patient; ``labels_of``: sample -> labels."""
    signature: dict[str, set[str]] = defaultdict(set)
    for key, patient in patient_of.items():
        signature[patient].update(labels_of.get(key, ()))
    strata = {patient: "|".join(sorted(labels)) or "-" for patient, labels in signature.items()}
    fold_of: dict[str, int | None] = dict.fromkeys(strata)
    if spec.folds:
        outer = _allocate(strata, {"train": 1.0 - spec.test, "test": spec.test}, spec.seed, "test")
        inner = {p: s for p, s in strata.items() if outer[p] == "train"}
        fold_names = {str(f): 1.0 / spec.folds for f in range(spec.folds)}
        for patient, fold in _allocate(inner, fold_names, spec.seed, "folds").items():
            fold_of[patient] = int(fold)
        split_of = outer
    else:
        split_of = _allocate(strata, spec.ratios or DEFAULT_RATIOS, spec.seed, "ratios")
    return {key: (split_of[patient], fold_of[patient]) for key, patient in patient_of.items()}


def leakage(samples: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Patients found in more than one split or fold: ``{patient: [the places]}``; empty means no leak."""
    seen: dict[str, set[str]] = defaultdict(set)
    for sample in samples:
        place = sample["split"] if sample.get("fold") is None else f"{sample['split']}/fold {sample['fold']}"
        seen[sample["patient"]].add(place)
    return {patient: sorted(places) for patient, places in sorted(seen.items()) if len(places) > 1}


def distribution(samples: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per split (and fold): samples (series), patients, studies, instances, and annotations per label."""
    out: dict[str, dict[str, Any]] = {}
    patients: dict[str, set[str]] = defaultdict(set)
    studies: dict[str, set[str]] = defaultdict(set)
    for sample in samples:
        name = sample["split"] if sample.get("fold") is None else f"fold {sample['fold']}"
        entry = out.setdefault(name, {"samples": 0, "patients": 0, "studies": 0, "instances": 0, "labels": {}})
        entry["samples"] += 1
        entry["instances"] += len(sample["instances"])
        patients[name].add(sample["patient"])
        studies[name].add(sample["study_uid"])
        for annotation in sample["annotations"]:
            entry["labels"][annotation["label"]] = entry["labels"].get(annotation["label"], 0) + 1
    for name, entry in out.items():
        entry["patients"] = len(patients[name])
        entry["studies"] = len(studies[name])
    return dict(sorted(out.items()))
