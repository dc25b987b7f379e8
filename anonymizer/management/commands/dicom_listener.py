"""``manage.py dicom_listener --port 11112 --ae-title WORKBENCH --project SLUG``: run the C-STORE SCP."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from anonymizer.listener import listener_start, listener_stop
from anonymizer.management.lookup import project_by_slug, user_by_name


class Command(BaseCommand):
    help = "Receive DICOM over the network (C-STORE, C-ECHO) into a project's ingest pipeline."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=11112)
        parser.add_argument("--ae-title", default="WORKBENCH")
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--bind", default="127.0.0.1", help="address to listen on (0.0.0.0 for all)")
        parser.add_argument("--user", default="", help="username recorded as the creator of the batches")

    def handle(self, *args: Any, **opts: Any) -> None:
        project = project_by_slug(opts["project"])
        user = user_by_name(opts["user"])
        if len(opts["ae_title"]) > 16:
            raise CommandError("An AE title has at most 16 characters.")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        server = listener_start(
            project=project, port=opts["port"], ae_title=opts["ae_title"], bind=opts["bind"], user=user
        )
        self.stdout.write(f"Listening as {opts['ae_title']} on {opts['bind']}:{opts['port']} for {project.slug}")
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            listener_stop(server)
            self.stdout.write("Listener stopped.")
