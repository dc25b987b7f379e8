"""``manage.py dicom_listener --port 11112 --ae-title WORKBENCH --project SLUG``: run the C-STORE SCP."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from anonymizer.listener import listener_start, listener_stop
from workbench.models import Project


class Command(BaseCommand):
    help = "Receive DICOM over the network (C-STORE, C-ECHO) into a project's ingest pipeline."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=11112)
        parser.add_argument("--ae-title", default="WORKBENCH")
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--bind", default="127.0.0.1", help="address to listen on (0.0.0.0 for all)")
        parser.add_argument("--user", default="", help="username recorded as the creator of the batches")

    def handle(self, *args: Any, **opts: Any) -> None:
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"No project with slug {opts['project']!r}.")
        user = None
        if opts["user"]:
            user = get_user_model().objects.filter(username=opts["user"]).first()
            if user is None:
                raise CommandError(f"No user named {opts['user']!r}.")
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
