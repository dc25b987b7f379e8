"""The web process never imports torch: URLs, APIs and the inference services load without it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CODE = """
import os, sys, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")
django.setup()
import workbench.urls, inference.services, inference.tasks, inference.handlers
from django.urls import get_resolver
get_resolver().url_patterns
print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "monai", "ignite")))
"""


def test_the_web_process_imports_no_torch() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CODE], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
