"""Multipart parsing that gives every uploaded part a name, whatever encoding the client used.

Django decodes each part's headers as strict UTF-8 and silently skips a part whose header is
not (a Windows client sending a Latin-1 file name), and it skips a part whose name sanitizes to
nothing (``..``, only control characters). An upload must never lose a file without a word, so
header lines that are not UTF-8 are decoded with replacement characters, and a part left without
a usable name is called ``upload-<n>.dcm`` after its position in the request.
"""

from __future__ import annotations

from typing import Any

from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from rest_framework import parsers as drf_parsers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import DataAndFiles, MultiPartParser


class _NamingMultiPartParser(DjangoMultiPartParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._file_parts = 0

    def sanitize_file_name(self, file_name: str) -> str:
        self._file_parts += 1
        return super().sanitize_file_name(file_name) or f"upload-{self._file_parts}.dcm"


class UploadMultiPartParser(MultiPartParser):
    """DRF's multipart parser, with every file part named (see the module docstring)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> DataAndFiles:
        parser_context = parser_context or {}
        request = parser_context["request"]
        encoding = drf_parsers.get_encoding(parser_context)  # type: ignore[attr-defined]  # newer than the stubs
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        try:
            parser = _NamingMultiPartParser(meta, stream, request.upload_handlers, encoding)
            data, files = parser.parse()
        except MultiPartParserError as exc:
            raise ParseError(f"Multipart form parse error - {exc}") from exc
        return DataAndFiles(data, files)


def _nul_path(value: Any, path: str = "body") -> str | None:
    """Where in a parsed JSON document a string (key or value) holds a NUL character, or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = (path if "\x00" in key else None) or _nul_path(item, f"{path}.{key}")
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_path(item, f"{path}[{index}]")
            if found:
                return found
    return None


class JSONParser(drf_parsers.JSONParser):
    """DRF's JSON parser, refusing a NUL character anywhere in the document.

    Serializer CharFields refuse NUL already, but JSON fields (selections, geometry, options)
    are stored as they come, and PostgreSQL cannot store U+0000 in text or JSONB: it would
    fail the request with a 500 instead of a message.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        where = _nul_path(data)
        if where:
            raise ParseError(f"The JSON body holds a NUL character (\\u0000) in {where}; remove it.")
        return data
