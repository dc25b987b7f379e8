"""Serving an export archive: HTTP Range (resume) and streaming, never the whole file in memory."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO

from django.core.files.storage import default_storage
from django.http import HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

CHUNK = 1 << 20
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(ValueError):
    """The requested range starts beyond the end of the file."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte of a single ``bytes=`` range, or None for the whole file.

    Follows RFC 9110: a header that does not parse, or asks for several ranges, is ignored (the
    whole file is sent); a range that starts past the end raises RangeNotSatisfiable.
    """
    match = _RANGE.match((header or "").strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":  # the last N bytes
        length = int(last)
        if length == 0:
            raise RangeNotSatisfiable("an empty suffix range")
        return max(0, size - length), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if last != "" and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(f"the range starts at byte {start} but the archive has {size} bytes")
    return start, end


def _chunks(stream: IO[bytes], start: int, length: int) -> Iterator[bytes]:
    try:
        stream.seek(start)
        while length > 0:
            chunk = stream.read(min(CHUNK, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        stream.close()


def archive_response(
    name: str, *, size: int, sha256: str, filename: str, range_header: str | None, if_range: str | None
) -> HttpResponseBase:
    """The archive stored as ``name``: 200 whole, 206 partial, 416 unsatisfiable.

    On object storage (no local path) the answer is a redirect to a presigned URL, which serves
    ranges itself. ``If-Range`` with another ETag gets the whole file, as RFC 9110 asks.
    """
    etag = f'"{sha256}"'
    try:
        default_storage.path(name)
    except NotImplementedError:
        return HttpResponseRedirect(default_storage.url(name))
    wanted = range_header if not if_range or if_range.strip() == etag else None
    try:
        span = parse_range(wanted, size)
    except RangeNotSatisfiable as exc:
        refused = JsonResponse(
            {"error": "range_not_satisfiable", "message": f"Cannot serve that range: {exc}."}, status=416
        )
        refused["Content-Range"] = f"bytes */{size}"
        return refused
    first, last = span if span else (0, size - 1)
    length = last - first + 1 if size else 0
    response = StreamingHttpResponse(
        _chunks(default_storage.open(name, "rb"), first, length),
        status=206 if span else 200,
        content_type="application/zip",
    )
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = etag
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    if span:
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
    return response
