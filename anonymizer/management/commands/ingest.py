"""``manage.py ingest PATH --project SLUG``: send a folder tree, a file or a zip through the pipeline.

Files are read one at a time through :func:`anonymizer.intake.incoming_from_upload`, so size
limits and zip handling are exactly those of a browser upload. Output names batch ids and
counts only: file names may themselves carry identity and are never printed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from anonymizer import services
from anonymizer.intake import Incoming, incoming_from_upload
from anonymizer.management.lookup import project_by_slug, user_by_name
from anonymizer.models import IngestBatch, Source
from anonymizer.selectors import batch_counts, batch_state
from workbench.models import Project


def folder_files(root: Path) -> Iterator[Path]:
    """Every regular file under ``root`` (or ``root`` itself), sorted, hidden entries skipped.

    Symbolic links to directories are not followed, so a link cannot make the walk loop or
    leave the tree.
    """
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not name.startswith(".") and path.is_file():
                yield path


def folder_incoming(root: Path) -> Iterator[Incoming]:
    """One Incoming per file (or zip member) under ``root``; only one file is in memory at a time."""
    base = root.parent if root.is_file() else root
    for path in folder_files(root):
        name = path.relative_to(base).as_posix()
        try:
            with path.open("rb") as fh:
                yield from incoming_from_upload(name, fh, size=path.stat().st_size)
        except OSError:
            yield Incoming(name, None, "unreadable_file", "The file could not be read (permissions or I/O error).")


def folder_ingest(*, project: Project, root: Path, user: Any = None) -> IngestBatch:
    """Create one FOLDER batch holding every file under ``root``; returns it.

    Each file is stored and enqueued in its own transaction (see services.batch_add), so an
    interrupted run leaves a consistent, partly filled batch.
    """
    batch = services.batch_create(project=project, source=Source.FOLDER, user=user)
    services.batch_add(batch=batch, incoming=folder_incoming(root))
    return batch


def batch_wait(batch: IngestBatch, *, interval: float, timeout: float) -> dict[str, int]:
    """Poll until no item of ``batch`` is pending, or until ``timeout`` seconds; returns the counts."""
    deadline = time.monotonic() + timeout
    counts = batch_counts(batch)
    while batch_state(counts) == "processing" and time.monotonic() < deadline:
        time.sleep(interval)
        counts = batch_counts(batch)
    return counts


class Command(BaseCommand):
    help = "Ingest a folder tree, a DICOM file or a zip into a project (one batch, source 'folder')."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--user", default="", help="username recorded as the batch's creator")
        parser.add_argument("--wait", action="store_true", help="poll until a worker has finished the batch")
        parser.add_argument("--timeout", type=float, default=3600.0, help="seconds --wait waits at most")
        parser.add_argument("--interval", type=float, default=2.0, help="seconds between polls with --wait")

    def handle(self, *args: Any, **opts: Any) -> None:
        root: Path = opts["path"]
        if not root.exists():
            raise CommandError("The path does not exist.")
        project = project_by_slug(opts["project"])
        user = user_by_name(opts["user"])
        batch = folder_ingest(project=project, root=root, user=user)
        self.stdout.write(f"batch {batch.pk}")
        counts = batch_wait(batch, interval=opts["interval"], timeout=opts["timeout"]) if opts["wait"] else None
        self._report(counts or batch_counts(batch))

    def _report(self, counts: dict[str, int]) -> None:
        state = batch_state(counts)
        summary = " ".join(f"{status}={n}" for status, n in counts.items() if n or status == "total")
        self.stdout.write(f"{state}: {summary}")
        if state == "processing":
            self.stdout.write("Items are still pending; run with --wait, or watch the batch page.")
