"""A heartbeat thread that keeps a worker's claim on a row alive while a long block runs.

Shared by the ingest claims (``anonymizer.claims``) and the export claims (``datasets.claims``):
each passes the UPDATE that refreshes its own claim, so this module knows no model.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import DatabaseError, connection

logger = logging.getLogger(__name__)


@contextmanager
def heartbeat(beat: Callable[[], object], *, every: float, name: str) -> Iterator[None]:
    """Call ``beat`` every ``every`` seconds, from a thread of its own, while the block runs.

    A failed beat (the database briefly away) is logged and the next one tries again: a lease
    of several beats allows misses. Nothing runs when the caller holds a transaction: its claim
    is not visible to others until it commits, and the thread's UPDATE would wait on the
    caller's row lock. The thread closes its own database connection, never the caller's.
    """
    if connection.in_atomic_block:
        yield
        return
    stop = threading.Event()

    def run() -> None:
        try:
            while not stop.wait(every):
                try:
                    beat()
                except DatabaseError as exc:
                    logger.warning("%s: heartbeat failed (%s)", name, type(exc).__name__)
                    # Django recycles broken connections only between requests; this thread
                    # has none, so it drops a broken one itself and the next beat reconnects.
                    connection.close_if_unusable_or_obsolete()
        finally:
            connection.close()

    thread = threading.Thread(target=run, name=f"claim-heartbeat-{name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)
