"""Reason codes of rejected and quarantined items, in words a compliance officer can act on.

Each sentence says what happened and what to do; the item's own ``reason`` adds the details
(tags, counts, exception types, never a value from the file).
"""

from __future__ import annotations

REASONS: dict[str, str] = {
    # The input as it arrived (upload, zip, listener).
    "too_large": "The file is larger than the per-file limit. Split the upload or raise the limit.",
    "bad_zip": "The archive could not be opened. Re-create the zip and upload it again.",
    "archive_too_large": "The archive expands beyond the total size allowed per archive. "
    "Upload the files that were refused in another archive.",
    "zip_too_many": "The archive holds too many files. Upload it in several smaller archives.",
    "unsafe_zip_member": "An archive member was skipped for safety (a path leaving the archive, "
    "an encrypted or an oversized member). Upload that file on its own.",
    "bad_zip_member": "An archive member could not be extracted. Re-create the archive.",
    "zip_bomb": "An archive member expands far more than real DICOM does; it was skipped.",
    # The DICOM file itself.
    "not_dicom": "This is not a DICOM Part 10 file. Export the image from the PACS as DICOM.",
    "no_file_meta": "The file has no file meta information, so its encoding is unknown. "
    "Export it again from the source system.",
    "bad_file_meta": "The file meta information (group 0002) is corrupt. The sender wrote a broken "
    "file: export it again or report it to the vendor.",
    "truncated": "The file is truncated or incomplete (an interrupted transfer?). Send it again.",
    "unreadable": "The DICOM data set is malformed and could not be read. Export it again from the source.",
    "invalid_value": "An attribute the image needs is missing or has an impossible value. "
    "Report the file to the sending system's vendor.",
    "missing_uid": "A UID every DICOM instance must have is missing. The file cannot be placed in a study.",
    "value_too_long": "A value is longer than DICOM allows for its type, so it cannot be kept as it is. "
    "Fix the sending system's configuration and send the file again.",
    "dicomdir": "This is a DICOMDIR, an index of other files. Send the image files it lists.",
    # De-identification.
    "no_text_detector": "The image may carry burned-in text and no text detector is installed. "
    "Install one (see the README) and re-process.",
    "pixel_decode_error": "The pixel data could not be decoded, so burned-in text could not be "
    "checked. Install the missing decoder or re-process with pixel cleaning changed.",
    "deid_error": "De-identification failed on this file. Re-process it; if it fails again, discard it.",
    "verifier_leak": "After de-identification the independent check still found identifying content. "
    "Look at the preview, then re-process with changed options or discard the file.",
    "verify_error": "The independent check could not run on this file. Re-process it; if it fails again, discard it.",
    "write_error": "The de-identified file could not be written. Re-process it; if it fails again, discard it.",
    # Recording the result.
    "catalog_error": "The de-identified instance could not be recorded in the catalog; nothing was "
    "stored. Re-process it once the cause is fixed.",
    "store_error": "Storing the de-identified file failed; nothing was stored. Re-process it.",
    "raw_unreadable": "The encrypted original could not be read back (storage or key problem). "
    "Check the quarantine storage and the vault key, then re-process or discard.",
    "options_error": "The de-identification options of this item are not valid. Re-process it with other options.",
    "internal_error": "An unexpected error stopped de-identification. Re-process it; if it fails again, discard it.",
    "worker_lost": "Processing stopped without an answer several times (a crashed or killed worker). "
    "Re-process it once the workers are healthy, or discard it.",
}

_UNKNOWN = "The file could not be de-identified safely. Read the details, then re-process or discard it."


def reason_text(code: str) -> str:
    """The sentence for a reason code; a general one for codes this table does not know."""
    return REASONS.get(code, _UNKNOWN)
