"""``manage.py deidentify IN_DIR OUT_DIR``: de-identify a folder tree offline, on all cores.

Without ``--project`` the research default options and a local secret are used (env
WORKBENCH_DEID_SECRET in hex, or a key file created on first use); with ``--project`` the
project's options and pseudonym secret, so outputs match what the web pipeline would store.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from anonymizer.deid import DeidOptions
from anonymizer.deid.pixels import default_text_detector
from anonymizer.offline import DEFAULT_KEY_FILE, FileResult, OfflineError, load_secret, resolve_paths, run_offline


def _tqdm_progress(disabled: bool) -> Any:
    def wrap(stream: Iterable[FileResult], total: int) -> Iterable[FileResult]:
        from tqdm import tqdm

        return tqdm(stream, total=total, unit="file", disable=disabled, smoothing=0.1)

    return wrap


class Command(BaseCommand):
    help = "De-identify every file under IN_DIR into OUT_DIR with a pool of worker processes."
    # The system checks import every URL configuration, DRF and the API schema (~0.6 s); this
    # command touches none of them, and a folder run should not pay for them.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("in_dir", type=Path)
        parser.add_argument("out_dir", type=Path)
        parser.add_argument("--project", default="", help="use this project's options and pseudonym secret")
        parser.add_argument("--workers", type=int, default=0, help="worker processes (default: all cores)")
        parser.add_argument("--quarantine", type=Path, default=None, help="default: <OUT_DIR>-quarantine")
        parser.add_argument("--report", type=Path, default=None, help="default: <OUT_DIR>-report.json")
        parser.add_argument("--key-file", type=Path, default=None, help=f"default: {DEFAULT_KEY_FILE}")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            paths = resolve_paths(opts["in_dir"], opts["out_dir"], opts["quarantine"], opts["report"])
            options, secret, key_source, project = self._recipe(opts)
        except OfflineError as exc:
            raise CommandError(str(exc)) from None
        use_detector = options.clean_pixel_data and default_text_detector() is not None
        if options.clean_pixel_data and not use_detector:
            self.stderr.write("No text detector installed: images at risk of burned-in text will be quarantined.")
        self.stdout.write(f"Pseudonym secret: {key_source}")
        summary = run_offline(
            paths=paths,
            options=options,
            secret=secret,
            key_source=key_source,
            workers=opts["workers"] or None,
            use_detector=use_detector,
            progress=_tqdm_progress(opts["no_progress"]),
        )
        if project is not None:
            _audit(project, summary.report)
        counts = " ".join(f"{k}={v}" for k, v in summary.counts.items())
        rate = summary.counts["total"] / summary.seconds if summary.seconds else 0.0
        self.stdout.write(f"{counts} in {summary.seconds:.1f} s ({rate:.1f} files/s)")
        self.stdout.write(f"Output: {paths.out_dir}\nQuarantine: {paths.quarantine_dir}\nReport: {paths.report}")

    def _recipe(self, opts: dict[str, Any]) -> tuple[DeidOptions, bytes, str, Any]:
        if not opts["project"]:
            secret, source = load_secret(opts["key_file"])
            return DeidOptions.research_default(), secret, source, None
        from anonymizer import services
        from workbench.models import Project

        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise OfflineError(f"No project with slug {opts['project']!r}.")
        keys = services.project_keys(project)
        return services.project_options(project), keys.secret, f"project {project.slug}", project


def _audit(project: Any, report: dict[str, Any]) -> None:
    from workbench.audit import audit_record

    audit_record(
        action="offline_deidentify",
        project=project,
        object_type="project",
        object_id=project.pk,
        details={
            "counts": report["counts"],
            "recipe": report["recipe_sha256"],
            "key_id": report["key"]["key_id"],
            "workers": report["workers"],
        },
    )
