"""Fast access to the elements a pydicom Dataset holds, for the loops that visit every element.

``Dataset.elements()`` and ``Dataset.__iter__`` build a Tag, look the element up again and
sort with Python-level comparisons for every element; the de-identification of one file visits
each element several times (parse, value checks, identifier collection, the walker, the
verifier), so that bookkeeping cost more than the rules themselves. These helpers read the
dataset's own mapping once, in tag order, and convert a raw element only where the caller asks.
"""

from __future__ import annotations

from pydicom import DataElement, Dataset
from pydicom.dataelem import RawDataElement

Element = DataElement | RawDataElement

# VRs whose raw bytes can be copied to the output when the profile keeps them: the value is
# never inspected, so decoding and re-encoding it would only cost time. Text, names, UIDs,
# dates and sequences are always decoded, because some rule may look at them.
RAW_COPY_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "OB", "OW", "OF", "OD", "OL", "OV", "SV", "UV", "AT"})


def stored_elements(ds: Dataset) -> list[Element]:
    """The top-level elements of ``ds`` in tag order, as stored: raw ones stay raw.

    The same elements, in the same order, as ``ds.elements()``. A deferred-read element (a
    raw one whose value was not read) is read and converted, as ``ds.elements()`` does.
    """
    mapping = ds._dict
    found = [mapping[tag] for tag in sorted(mapping, key=int)]
    if any(isinstance(e, RawDataElement) and e.value is None and e.length for e in found):
        return list(ds.elements())
    return found


def converted(ds: Dataset, elem: Element) -> DataElement:
    """``elem`` of ``ds`` as a DataElement: a raw one is converted in ``ds`` (as ``ds[tag]`` does)."""
    if isinstance(elem, RawDataElement):
        return ds[elem.tag]
    return elem


def converted_elements(ds: Dataset) -> list[DataElement]:
    """The top-level elements of ``ds`` in tag order, every one converted (``list(ds)``)."""
    return [converted(ds, elem) for elem in stored_elements(ds)]
