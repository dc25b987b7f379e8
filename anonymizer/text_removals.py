"""Free-text removals of de-identification reports, said in words and never with the value.

A report stores ``[path, keyword, kind]`` per removal (``DeidReport.text_removals``);
this module groups them per attribute and writes sentences such as
"Study Description (0008,1030): person name, phone number removed".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from pydicom.datadict import dictionary_description, keyword_for_tag

from anonymizer.deid.result import REMOVAL_KINDS

_ITEM_INDEX = re.compile(r"\[\d+\]")
_TAG = re.compile(r"^\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)$")


def _attribute_name(tag: str, keyword: str = "") -> str:
    """The standard's name of the attribute at ``tag`` ("(0008,1030)"), else its keyword."""
    match = _TAG.match(tag)
    if match:
        number = int(match.group(1) + match.group(2), 16)
        if int(match.group(1), 16) % 2:
            return "Private attribute"
        if keyword_for_tag(number):
            return str(dictionary_description(number))
    return keyword or "Attribute"


def attribute_words(path: str, keyword: str = "") -> str:
    """A path such as "(0040,A730)[0].(0040,A160)" in words: "Text Value (0040,A160) in Content Sequence"."""
    parts = _ITEM_INDEX.sub("", path).split(".")
    last = parts[-1]
    words = f"{_attribute_name(last, keyword)} {last}"
    for parent in reversed(parts[:-1]):
        words += f" in {_attribute_name(parent)}"
    return words


def _kind_order(kind: str) -> tuple[int, str]:
    return (REMOVAL_KINDS.index(kind) if kind in REMOVAL_KINDS else len(REMOVAL_KINDS), kind)


def removal_sentence(path: str, keyword: str, kinds: Iterable[str]) -> str:
    """ "<attribute in words>: <kind>, <kind> removed", kinds in the order of REMOVAL_KINDS."""
    ordered = sorted(set(kinds), key=_kind_order)
    return f"{attribute_words(path, keyword)}: {', '.join(ordered)} removed"


def removal_rows(reports: Iterable[Sequence[Sequence[str]]]) -> list[dict[str, Any]]:
    """Per attribute (item indices ignored): which kinds were removed, in how many instances.

    ``reports`` holds one ``DeidReport.text_removals`` list per instance. Rows are sorted by
    attribute path; each has ``path``, ``tag``, ``keyword``, ``kinds`` (kind -> instances),
    ``instances`` and ``summary`` (the sentence). No row carries a value.
    """
    kinds: dict[tuple[str, str], Counter[str]] = {}
    instances: Counter[tuple[str, str]] = Counter()
    for removals in reports:
        seen = {(_ITEM_INDEX.sub("", path), keyword, kind) for path, keyword, kind in removals}
        for path, keyword, kind in seen:
            kinds.setdefault((path, keyword), Counter())[kind] += 1
        instances.update({(path, keyword) for path, keyword, _ in seen})
    rows = []
    for (path, keyword), counter in sorted(kinds.items()):
        rows.append(
            {
                "path": path,
                "tag": path.rsplit(".", 1)[-1],
                "keyword": keyword,
                "kinds": {kind: counter[kind] for kind in sorted(counter, key=_kind_order)},
                "instances": instances[(path, keyword)],
                "summary": removal_sentence(path, keyword, counter),
            }
        )
    return rows


def removal_summary(removals: Sequence[Sequence[str]]) -> str:
    """One instance's removals as one line of sentences joined by "; " ("" when none)."""
    return "; ".join(row["summary"] for row in removal_rows([removals]))
