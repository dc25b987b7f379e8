"""Pixel data in and out: decode every transfer syntax pydicom's test files use, store cleaned frames.

Decoding tries pydicom's decoder plugins (pydicom itself, pylibjpeg and its libjpeg, openjpeg
and RLE plugins, pyjpegls, python-gdcm, Pillow; pydicom moves on to the next plugin when one
fails) and then python-gdcm directly, which also decodes 12-bit JPEG Extended streams that
pydicom's gdcm plugin declines and libjpeg rejects for their scan parameters.

Colour: decoding keeps the stored colour space (``as_rgb=False``), except where the codec
itself converts: JPEG 2000 YBR_ICT / YBR_RCT come out as RGB (the inverse component transform
is part of decoding). Decoded data are always full resolution, so YBR_FULL_422 comes out as
YBR_FULL. :attr:`Frames.photometric` says which.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydicom import Dataset
from pydicom.encaps import generate_frames
from pydicom.pixels import convert_color_space, get_decoder, pack_bits
from pydicom.uid import UID, ExplicitVRLittleEndian, JPEG2000TransferSyntaxes

from .errors import PixelDecodeError

STORABLE_PHOTOMETRIC = frozenset({"MONOCHROME1", "MONOCHROME2", "PALETTE COLOR", "RGB", "YBR_FULL"})
_FULL_RESOLUTION = {"YBR_FULL_422": "YBR_FULL", "YBR_ICT": "RGB", "YBR_RCT": "RGB"}
# Element VRs whose bytes are words of this size: converted when a big-endian input is re-encoded.
_WORD_SIZE = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}
_EXTENDED_OFFSETS = (0x7FE00001, 0x7FE00002)


@dataclass(frozen=True)
class Frames:
    """Decoded pixel data: ``data`` is (frames, rows, columns[, samples]) of stored values
    (before any modality or VOI LUT), full resolution, samples interleaved; ``photometric``
    names the colour space of ``data`` (may differ from the file's PhotometricInterpretation
    when the codec converted, see the module docstring)."""

    data: np.ndarray
    photometric: str


def _transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    tsyntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if not tsyntax:
        raise PixelDecodeError("cannot decode (7FE0,0010): the transfer syntax is unknown")
    return UID(str(tsyntax))


def _gdcm_frames(ds: Dataset, tsyntax: UID) -> tuple[np.ndarray, str]:
    """Decode every frame with python-gdcm directly (in memory, one fragment per frame)."""
    import gdcm

    gdcm.Trace.WarningOff()  # gdcm writes decoder remarks to stderr; they carry no values
    gdcm.Trace.ErrorOff()
    rows, cols = int(ds.Rows), int(ds.Columns)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    bits_allocated, bits_stored = int(ds.BitsAllocated), int(ds.get("BitsStored", ds.BitsAllocated))
    signed = int(ds.get("PixelRepresentation", 0) or 0)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    count = int(ds.get("NumberOfFrames", 1) or 1)
    dtype = np.dtype(f"<{'i' if signed else 'u'}{bits_allocated // 8}")
    decoded = []
    for src in generate_frames(ds.PixelData, number_of_frames=count):
        fragment = gdcm.Fragment()
        fragment.SetByteStringValue(src)
        fragments = gdcm.SequenceOfFragments.New()
        fragments.AddFragment(fragment)
        elem = gdcm.DataElement(gdcm.Tag(0x7FE0, 0x0010))
        elem.SetValue(fragments.__ref__())
        img = gdcm.Image()
        img.SetNumberOfDimensions(2)
        img.SetDimensions((cols, rows, 1))
        img.SetDataElement(elem)
        pi_type = gdcm.PhotometricInterpretation.GetPIType(photometric)
        img.SetPhotometricInterpretation(gdcm.PhotometricInterpretation(pi_type))
        if samples > 1:
            img.SetPlanarConfiguration(int(ds.get("PlanarConfiguration", 0) or 0))
        img.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.GetTSType(str(tsyntax))))
        img.SetPixelFormat(gdcm.PixelFormat(samples, bits_allocated, bits_stored, bits_stored - 1, signed))
        buffer = img.GetBuffer()
        if not buffer:
            raise ValueError("gdcm returned no data")
        raw = buffer.encode("utf-8", "surrogateescape")
        shape = (rows, cols, samples) if samples > 1 else (rows, cols)
        decoded.append(np.frombuffer(raw, dtype=dtype, count=int(np.prod(shape))).reshape(shape))
    if tsyntax in JPEG2000TransferSyntaxes and photometric in ("YBR_ICT", "YBR_RCT"):
        photometric = "RGB"
    return np.stack(decoded), photometric


def _decode(ds: Dataset, tsyntax: UID) -> tuple[np.ndarray, str]:
    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError:
        raise PixelDecodeError(f"cannot decode (7FE0,0010): no decoder for transfer syntax {tsyntax}") from None
    failure: Exception | None = None
    try:
        keep_colour: dict[str, Any] = {"as_rgb": False}
        arr, meta = decoder.as_array(ds, **keep_colour)  # tries every available plugin in turn
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        return (arr[np.newaxis, ...] if frames == 1 else arr), str(meta["photometric_interpretation"])
    except Exception as exc:  # decoders raise many types; the caller only needs "cannot"
        failure = exc
    if tsyntax.is_encapsulated:
        try:
            return _gdcm_frames(ds, tsyntax)
        except Exception as exc:  # gdcm missing, or the stream is corrupt
            failure = exc
    raise PixelDecodeError(
        f"cannot decode (7FE0,0010) with transfer syntax {tsyntax} ({type(failure).__name__}): "
        "the pixel data is damaged, too short or encoded in an unsupported variant"
    ) from failure


def decode_frames(ds: Dataset) -> Frames:
    """Pixel data of ``ds`` as :class:`Frames`; raises PixelDecodeError when no decoder can.

    Never changes ``ds``.
    """
    if "PixelData" not in ds:
        raise PixelDecodeError("cannot decode (7FE0,0010): the data set has no pixel data")
    arr, photometric = _decode(ds, _transfer_syntax(ds))
    photometric = _FULL_RESOLUTION.get(photometric, photometric)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if arr.ndim != (4 if samples > 1 else 3):
        raise PixelDecodeError("cannot decode (7FE0,0010): unexpected pixel array shape")
    if photometric not in STORABLE_PHOTOMETRIC:
        raise PixelDecodeError(f"cannot clean (7FE0,0010): colour space {photometric} is not supported")
    return Frames(arr, photometric)


def _datasets(ds: Dataset) -> Iterator[Dataset]:
    yield ds
    for elem in ds:  # iterating also converts raw (not yet parsed) elements
        if elem.VR == "SQ":
            for item in elem.value or []:
                yield from _datasets(item)


def _to_little_endian(ds: Dataset) -> None:
    """Byte-swap the word-valued binary elements (LUT data, waveforms...) of a big-endian input.

    Numbers (US, SS, FL...) are held as Python values and re-encoded by pydicom on write;
    OW/OF/OL/OD/OV are held as the file's bytes and must be converted here. A data set read
    from a file then forgets its original encoding, so that it may be written little endian.
    """
    for item in list(_datasets(ds)):
        for elem in item:
            size = _WORD_SIZE.get(elem.VR)
            if size and int(elem.tag) != 0x7FE00010 and isinstance(elem.value, bytes) and len(elem.value) % size == 0:
                elem.value = np.frombuffer(elem.value, dtype=f">u{size}").astype(f"<u{size}").tobytes()
        item.set_original_encoding(None, None)


def _storable(frames: Frames) -> Frames:
    """RGB for 8-bit YBR_FULL: uncompressed YBR_FULL is not allowed by every IOD (US, for one)."""
    if frames.photometric == "YBR_FULL" and frames.data.dtype == np.uint8:
        return Frames(convert_color_space(frames.data, "YBR_FULL", "RGB"), "RGB")
    if frames.photometric not in STORABLE_PHOTOMETRIC:
        raise PixelDecodeError(f"cannot store (7FE0,0010) in colour space {frames.photometric}")
    return frames


def _as_frames(ds: Dataset, frames: Frames | np.ndarray) -> Frames:
    if isinstance(frames, Frames):
        return frames
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    return Frames(frames, _FULL_RESOLUTION.get(photometric, photometric))


def store_frames(ds: Dataset, frames: Frames | np.ndarray) -> None:
    """Replace the pixel data of ``ds`` with ``frames``, uncompressed Explicit VR Little Endian.

    Guarantees a consistent image pixel description: PhotometricInterpretation is
    ``frames.photometric`` (8-bit YBR_FULL is converted to RGB), PlanarConfiguration 0
    (interleaved) for colour and absent otherwise, BitsAllocated from the array (1 kept
    for bit-packed images), BitsStored kept when it fits, HighBit = BitsStored - 1,
    PixelRepresentation from the array's signedness. Palette LUTs and other attributes
    stay; a big-endian input's word-valued binary elements are converted to little
    endian with the rest of the data set.
    BurnedInAnnotation becomes NO.
    """
    frames = _storable(_as_frames(ds, frames))
    data = frames.data
    if not _transfer_syntax(ds).is_little_endian:
        _to_little_endian(ds)
    samples = data.shape[-1] if data.ndim == 4 else 1
    packed = int(ds.get("BitsAllocated", 0) or 0) == 1
    bits_allocated = 1 if packed else data.dtype.itemsize * 8
    bits_stored = min(int(ds.get("BitsStored", bits_allocated) or bits_allocated), bits_allocated)
    little = data.astype(data.dtype.newbyteorder("<"), copy=False)
    pixel_bytes = pack_bits(little) if packed else little.tobytes()
    if len(pixel_bytes) % 2:
        pixel_bytes += b"\x00"
    for tag in _EXTENDED_OFFSETS:
        if tag in ds:
            del ds[tag]
    ds.Rows, ds.Columns, ds.SamplesPerPixel = int(data.shape[1]), int(data.shape[2]), samples
    ds.PhotometricInterpretation = frames.photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits_allocated, bits_stored, bits_stored - 1
    ds.PixelRepresentation = 1 if data.dtype.kind == "i" else 0
    if samples > 1:
        ds.PlanarConfiguration = 0
    elif "PlanarConfiguration" in ds:
        del ds.PlanarConfiguration
    if "NumberOfFrames" in ds or data.shape[0] > 1:
        ds.NumberOfFrames = int(data.shape[0])
    # A new element: the old one may be encapsulated (undefined length).
    ds.add_new(0x7FE00010, "OB" if bits_allocated <= 8 else "OW", pixel_bytes)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.BurnedInAnnotation = "NO"
