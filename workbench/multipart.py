"""Django's multipart part parser, made lenient about part headers that are not UTF-8.

Django decodes each part's headers as strict UTF-8 and silently skips a part whose header is
not (a Windows client sending a Latin-1 file name). An upload must never lose a file without a
word, so header lines that are not UTF-8 are decoded with replacement characters. Kept apart
from the DRF parsers (``workbench.api.parsers``) so that installing it at start-up does not
import DRF into every process (a worker or a folder run has no use for it).
"""

from __future__ import annotations

from typing import Any

from django.http import multipartparser

# Not in django-stubs: a module-level function of Django's parser, stable across 4.x-5.x.
_strict_parse_boundary_stream = multipartparser.parse_boundary_stream  # type: ignore[attr-defined]


def _utf8_line(line: bytes) -> bytes:
    try:
        line.decode()
    except UnicodeDecodeError:
        return line.decode("utf-8", "replace").encode()
    return line


def lenient_parse_boundary_stream(stream: Any, max_header_size: int) -> Any:
    """Django's part parser, after re-encoding header lines that are not UTF-8."""
    chunk = stream.read(max_header_size)
    end = chunk.find(b"\r\n\r\n")
    if end != -1:
        chunk = b"\r\n".join(_utf8_line(line) for line in chunk[:end].split(b"\r\n")) + chunk[end:]
    if chunk:
        stream.unget(chunk)
    return _strict_parse_boundary_stream(stream, max_header_size)


def install() -> None:
    """Make Django's multipart parser (forms and the API alike) decode part headers leniently."""
    multipartparser.parse_boundary_stream = lenient_parse_boundary_stream  # type: ignore[attr-defined]
