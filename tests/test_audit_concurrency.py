"""Events written by several processes at once still form one gapless, verifiable chain.

Runs on the database the suite runs on: PostgreSQL (row lock on the head) or,
for SQLite, a file database of its own (``BEGIN IMMEDIATE`` serializes writers;
the in-memory test database cannot be shared between processes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
PROCESSES, EVENTS = 4, 25
WRITER = """
import os, sys, time
import django
django.setup()
from workbench.audit import audit_record
go = sys.argv[2]
while not os.path.exists(go):
    time.sleep(0.01)
for i in range(int(sys.argv[1])):
    audit_record(action="concurrent", details={"pid": os.getpid(), "i": i})
"""


def _env(tmp_path: Path) -> dict[str, str]:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        url = f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    else:
        host = f"{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}"
        url = f"postgres://{db.get('USER') or 'postgres'}@{host}/{db['NAME']}"
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "workbench.settings",
        "DATABASE_URL": url,
        "WORKBENCH_VAR_DIR": str(tmp_path / "var"),
        "WORKBENCH_AUDIT_KEY": "c" * 40,
        "WORKBENCH_AUDIT_CHECKPOINTS": str(tmp_path / "checkpoints.jsonl"),
    }


def test_concurrent_writers_form_one_chain(tmp_path: Path) -> None:
    env = _env(tmp_path)
    manage = [sys.executable, str(ROOT / "manage.py")]
    if connection.vendor == "sqlite":
        subprocess.run([*manage, "migrate", "-v0"], env=env, cwd=ROOT, check=True, timeout=300)
    go = tmp_path / "go"
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(EVENTS), str(go)], env=env, cwd=ROOT)
        for _ in range(PROCESSES)
    ]
    time.sleep(3)  # let every writer finish django.setup() and wait at the start line
    go.touch()
    assert [w.wait(timeout=120) for w in writers] == [0] * PROCESSES

    done = subprocess.run(
        [*manage, "verify_audit", "--json", "--no-checkpoint"], env=env, cwd=ROOT, capture_output=True, timeout=120
    )
    report = json.loads(done.stdout)
    assert done.returncode == 0, report["problems"]
    assert report["events"] == report["head"]["seq"] == PROCESSES * EVENTS
    assert report["checkpoint"]["seq"] == PROCESSES * EVENTS
    lines = (tmp_path / "checkpoints.jsonl").read_text().splitlines()
    assert len(lines) == PROCESSES * EVENTS and all(json.loads(line)["sig"] for line in lines)
