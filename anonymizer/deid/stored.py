"""Fast access to the elements a pydicom Dataset holds, for the loops that visit every element.

``Dataset.elements()`` and ``Dataset.__iter__`` build a Tag, look the element up again and
sort with Python-level comparisons for every element; the de-identification of one file visits
each element several times (parse, value checks, identifier collection, the walker, the
verifier), so that bookkeeping cost more than the rules themselves. These helpers read the
dataset's own mapping once, in tag order, and convert a raw element only where the caller asks.
"""

from __future__ import annotations

from pydicom import DataElement, Dataset
from pydicom.charset import default_encoding
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.valuerep import AMBIGUOUS_VR

Element = DataElement | RawDataElement
_CHARSET_TAG = 0x00080005
_PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})  # float, double float and pixel data
_SPECIAL_VRS = frozenset({"SQ", *AMBIGUOUS_VR})

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
    """``elem`` of ``ds`` as a DataElement: a raw one is converted in ``ds``, as ``ds[tag]`` does.

    ``Dataset.__getitem__`` converts, stores through ``__setitem__`` and then looks the element
    up three more times to check for a sequence and an ambiguous VR. For the plain case (a public
    tag that is not pixel data, read in full, whose VR is neither SQ nor ambiguous) this does the
    same conversion and stores the result where ``__setitem__`` would; every other case goes
    through ``ds[tag]`` itself. ``anonymizer/deid/tests/test_stored.py`` checks the two agree on pydicom's corpus.
    """
    if not isinstance(elem, RawDataElement):
        return elem
    tag = elem.tag
    if (tag >> 16) % 2 or tag in _PIXEL_TAGS or elem.VR in _SPECIAL_VRS or (elem.value is None and elem.length):
        return ds[tag]
    charset = default_encoding if tag == _CHARSET_TAG else (ds.original_character_set or ds._character_set)
    new = convert_raw_data_element(elem, encoding=charset, ds=ds)
    if new.VR in _SPECIAL_VRS:
        return ds[tag]  # a sequence or an ambiguous VR found by the dictionary lookup: pydicom's own path
    ds._dict[tag] = new
    return new


def converted_elements(ds: Dataset) -> list[DataElement]:
    """The top-level elements of ``ds`` in tag order, every one converted (``list(ds)``)."""
    return [converted(ds, elem) for elem in stored_elements(ds)]
