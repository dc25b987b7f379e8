"""The dataset card (README.md in every export), written from the manifest alone. Imports no Django.

It holds no export time and nothing outside the manifest, so equal versions give equal cards.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from annotations.geometry import POINT_KINDS
from datasets.labelsource import ALL_READERS, RULES, mode_of
from datasets.splits import distribution, leakage

# Where a format puts point, line and angle labels, or None where it leaves them out.
KEYPOINTS_IN = {
    "coco": "COCO keypoints in `annotations/keypoints_{split}.json`",
    "yolo": None,
}

DEFAULT_USE = (
    "Research and development of medical-imaging models on de-identified data. Not for clinical use, "
    "and not for any attempt to re-identify the people imaged."
)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _kind_words(kinds: Sequence[str]) -> str:
    """("line", "point") -> "point and line", in the order people name them."""
    ordered = [kind for kind in ("point", "line", "angle") if kind in kinds]
    return ordered[0] if len(ordered) == 1 else f"{', '.join(ordered[:-1])} and {ordered[-1]}"


def _format_notes(labels: list[Mapping[str, Any]], export_format: str) -> list[str]:
    kinds = sorted({one["kind"] for one in labels} & POINT_KINDS)
    if not kinds or export_format not in KEYPOINTS_IN:
        return []
    where = KEYPOINTS_IN[export_format]
    names = ", ".join(one["name"] for one in labels if one["kind"] in kinds)
    if where is None:
        return [
            "",
            f"Left out of this {export_format} export: {names} ({' and '.join(kinds)} labels have no form in it).",
        ]
    return ["", f"{_kind_words(kinds).capitalize()} labels ({names}) are {where}."]


def export_warnings(labels: Sequence[Mapping[str, Any]], splits: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """format -> what an export of this version in that format would leave out, in words, for the
    export form to say before anyone exports (the card says it after). Empty when nothing is lost.

    ``labels`` carry their kinds (the manifest's label block), ``splits`` the per-split label
    counts of the version's summary (datasets.splits.distribution).
    """
    counts: Counter[str] = Counter()
    for entry in splits.values():
        counts.update(entry.get("labels", {}))
    lost = [(one["name"], one["kind"], counts[one["name"]]) for one in labels if one["kind"] in POINT_KINDS]
    lost = [item for item in lost if item[2]]
    if not lost:
        return {}
    words = ", ".join(f"{count} {name} ({kind})" for name, kind, count in lost)
    return {
        export_format: (
            f"This format leaves out {words}: point, line and angle labels have no {export_format} form. "
            f"COCO keeps them as keypoints."
        )
        for export_format, where in KEYPOINTS_IN.items()
        if where is None
    }


ORIGIN_WORDS = {
    "verified": "only what a person drew, edited or accepted (accepted model proposals are in; fused consensus "
    "labels only where an adjudicator decided)",
    "human": "only labels a person drew (no model proposal, even accepted, and no fused consensus)",
}


def _label_source(manifest: Mapping[str, Any]) -> list[str]:
    """Which reads gave the samples their labels (datasets.labelsource)."""
    mode = mode_of(manifest)
    block = manifest.get("label_source") or {}
    words = f"Label source: **{mode}**"
    if block.get("reader"):
        words += f" ({block['reader']})"
    out = [f"{words}: {RULES.get(mode, mode)}."]
    origin = (manifest.get("selection") or {}).get("origin", "any")
    if origin != "any":
        out.append(f"Labels made by: **{origin}**: {ORIGIN_WORDS[origin]}.")
    if block:
        out[0] += " Each sample lists its reads under `reads` in manifest.json."
    if mode == ALL_READERS:
        out[0] += (
            " Each reader's labels are a separate label set: `label_sets/reader-NN/` holds one export per "
            "reader, and `label_sets/readers.json` says whose each is."
        )
    return out


def dataset_card(manifest: Mapping[str, Any], *, version_id: str, export_format: str) -> str:
    samples = manifest["samples"]
    labels = manifest["labels"]["labels"]
    modalities = Counter(s["modality"] or "unknown" for s in samples)
    scanners = Counter(s.get("scanner") or "unknown" for s in samples)
    readers = sorted({a["reader"] for s in samples for a in s["annotations"]})
    split = manifest["split"]
    review = manifest.get("review", {})
    deid = manifest["deidentification"]
    augmentation = manifest["augmentation"]
    leaks = leakage(samples)
    out = [
        f"# {manifest['dataset']['name']}",
        "",
        f"Version `{version_id}` (the sha256 of `manifest.json`), exported as **{export_format}** by Workbench.",
        f"Project: {manifest['project']['name']}. Parent version: {manifest.get('parent') or 'none'}.",
    ]
    if manifest.get("note"):
        out += ["", f"Note: {manifest['note']}"]
    out += [
        "",
        "## Intended use",
        "",
        manifest["dataset"].get("description") or DEFAULT_USE,
        "",
        "## De-identification",
        "",
        f"Every file was de-identified before it entered Workbench: {deid['profile']}, with the options "
        + ", ".join(m["meaning"] for m in deid.get("methods", [])[1:] or [{"meaning": "none"}])
        + ". Patients, studies and series are named by pseudonyms only; dates are shifted or reduced as the "
        "options say. Burned-in text was detected and blacked out, and every output was verified.",
        "",
        "## Sources",
        "",
        f"{len(samples)} series of {len({s['patient'] for s in samples})} patients in "
        f"{len({s['study_uid'] for s in samples})} studies; {sum(len(s['instances']) for s in samples)} images.",
        "",
        *_table(["modality", "series"], [[k, v] for k, v in sorted(modalities.items())]),
        "",
        *_table(["scanner", "series"], [[k, v] for k, v in sorted(scanners.items())]),
        "",
        "## Labels",
        "",
        f"Label schema version {manifest['labels'].get('version')}; in label maps 0 is background.",
        "",
        *_table(
            ["index", "name", "kind", "color", "attributes"],
            [
                [one["index"], one["name"], one["kind"], one["color"], ", ".join(a["name"] for a in one["attributes"])]
                for one in labels
            ],
        ),
        *_format_notes(labels, export_format),
        "",
        "## Annotators and review",
        "",
        f"Annotators: {', '.join(readers) or 'none'}. Reviewers: {', '.join(review.get('reviewers', [])) or 'none'}.",
        f"Included work: assignments whose status is {' or '.join(review.get('statuses', ['accepted']))}; "
        "every annotation is frozen at the revision listed in manifest.json.",
        "",
        *_label_source(manifest),
        "",
        "## Splits",
        "",
        f"Grouped by pseudonymous patient and stratified by label set, seed {split['seed']}; "
        + (f"{split['folds']} folds" if split.get("folds") else f"ratios {split['ratios']}")
        + ". Leakage check: "
        + ("no patient is in more than one split." if not leaks else f"FAILED for {len(leaks)} patient(s).")
        + "",
        "",
        *_table(
            ["split", "series", "patients", "annotations per label"],
            [
                [name, entry["samples"], entry["patients"], ", ".join(f"{k}: {v}" for k, v in entry["labels"].items())]
                for name, entry in distribution(samples).items()
            ],
        ),
        "",
        "## Augmentation",
        "",
    ]
    if augmentation.get("transforms"):
        materialized = "materialized in this archive (train split only)" if augmentation.get("materialize") else ""
        out += [
            f"Recipe with seed {augmentation['seed']} in `augmentation.json`, applied on the fly by "
            f"`workbench_augment.py` (MONAI){'; also ' + materialized if materialized else ''}: "
            + ", ".join(t["name"] for t in augmentation["transforms"])
            + "."
        ]
    else:
        out += ["None."]
    out += ["", "## Files", "", "`manifest.json` (the frozen version), `SHA256SUMS` (check with `sha256sum -c`).", ""]
    return "\n".join(out)
