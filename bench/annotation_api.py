"""Annotation saves under concurrency: latency, and proof that no write is lost or silently overwritten.

Creates a scratch PostgreSQL database (``workbench_bench``), migrates and seeds it (a
project, readers with API tokens, a series made with the tests' factory, the default
label schema), starts ``gunicorn workbench.wsgi -w 4`` on a free port, then for
``--seconds``:

* ``--clients`` threads each create their own annotation and PATCH it over and over with
  the revision the last answer gave (none of them should ever see a conflict), while
* ``--racers`` further threads PATCH a few shared annotations at once with whatever
  revision they last saw, so most of their saves must be refused with 409.

A baseline in the same run sends plain ``GET /api/projects/`` requests (token lookup,
one query, JSON) from the same number of threads. At the end it verifies, through the
database, that each client's last acknowledged revision and geometry are what the server
holds, and that every 200 on a shared annotation is exactly one revision in its history
carrying that request's content. Prints p50/p95 latencies, the ratio to the baseline and
the count of lost or overwritten writes (must be 0). Drops the database afterwards.

    .venv/bin/python bench/annotation_api.py [--seconds 30] [--clients 20] [--racers 4] [--workers 4] [--interval 1]

``--interval`` paces each client to one save per that many seconds (the viewer autosaves a
change after a 300 ms debounce, so a reader sends about one save a second while drawing);
without it the clients save back to back, which measures saturation, not a reader's wait.

DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test) names the server; only its
host and credentials are used.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "workbench_bench"
SHARED_ANNOTATIONS = 2
GOLDEN = 0.6180339887  # spreads paced clients' phases evenly over the interval, whatever their number


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    codes: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, code: int) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.codes[code] = self.codes.get(code, 0) + 1


def request(port: int, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any, float]:
    """One request on a fresh connection (gunicorn's sync workers close after each response)."""
    payload = None if body is None else json.dumps(body)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    elapsed = time.perf_counter() - start
    return response.status, (json.loads(raw) if raw else None), elapsed


# --- database and server ---------------------------------------------------------------------------


def _admin(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def setup_database(server_url: str) -> str:
    parts = urlsplit(server_url)
    bench_url = urlunsplit(parts._replace(path=f"/{BENCH_DB}"))
    admin_url = urlunsplit(parts._replace(path=parts.path or "/postgres"))
    _admin(admin_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    _admin(admin_url, f"CREATE DATABASE {BENCH_DB}")
    return bench_url


def drop_database(server_url: str) -> None:
    parts = urlsplit(server_url)
    _admin(
        urlunsplit(parts._replace(path=parts.path or "/postgres")), f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)"
    )


def seed(clients: int) -> dict[str, Any]:
    """Project, one reader per client plus one shared reader for the racers, tokens, series, schema."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from annotations import services
    from tests.annotation_factory import make_series, sop_uids
    from workbench.models import Membership, Project, Role

    call_command("migrate", verbosity=0)
    project = Project.objects.create(name="Bench", slug="bench")
    schema = services.label_schema_default(project=project)
    series = make_series(project, instances=1, rows=64, columns=64, tag="bench")
    users = []
    for name in [f"reader{i:02d}" for i in range(clients)] + ["shared"]:
        user = get_user_model().objects.create_user(username=name)
        Membership.objects.create(project=project, user=user, role=Role.RADIOLOGIST)
        users.append(user)
    assignments = services.assignment_create(series=series, readers=users, user=None)
    lesion = schema.labels.get(kind="box")
    shared = [
        services.annotation_create(
            assignment=assignments[-1],
            user=users[-1],
            label=lesion,
            sop_instance_uid=sop_uids(series)[0],
            geometry={"x0": 0, "y0": 0, "x1": 1, "y1": 1},
        )[0]
        for _ in range(SHARED_ANNOTATIONS)
    ]
    return {
        "tokens": [Token.objects.create(user=u).key for u in users],
        "assignments": [str(a.pk) for a in assignments],
        "label": str(lesion.pk),
        "sop": sop_uids(series)[0],
        "shared": [str(a.pk) for a in shared],
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(workers: int, env: dict[str, str], token: str, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """gunicorn on a free port; its log (Django warns on every 409) goes to ``log``."""
    port = free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn), "workbench.wsgi", "-w", str(workers), "-b", f"127.0.0.1:{port}", "--log-level", "warning"]
    with log.open("ab") as sink:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if request(port, token, "GET", "/api/projects/")[0] == 200:
                return server, port
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError("gunicorn did not answer within 30 s")


# --- load ------------------------------------------------------------------------------------------


def pace(interval: float, started: float, step: int, phase: float = 0.0) -> None:
    """With an interval, wait for this client's next tick (saves at a steady cadence, like the
    viewer's debounced autosave); without one, go on at once (closed loop, saturating).

    ``phase`` (a fraction of the interval) spreads the clients' ticks over the interval: readers
    do not all save in the same millisecond, and a bench where they do measures its own herd.
    """
    if interval > 0:
        time.sleep(max(0.0, started + (step + phase) * interval - time.monotonic()))


def own_client(
    port: int,
    seed_data: dict[str, Any],
    index: int,
    until: float,
    stats: Stats,
    acks: dict[str, Any],
    interval: float = 0.0,
) -> None:
    token, assignment = seed_data["tokens"][index], seed_data["assignments"][index]
    body = {
        "assignment": assignment,
        "label": seed_data["label"],
        "sop_instance_uid": seed_data["sop"],
        "geometry": {"x0": index, "y0": 0, "x1": index + 1, "y1": 1},
        "client_id": str(uuid.uuid4()),
    }
    code, data, seconds = request(port, token, "POST", "/api/annotations/", body)
    stats.add(seconds, code)
    if code != 201:
        acks[f"own{index}"] = {"error": code}
        return
    annotation, revision, geometry, step = data["id"], data["revision"], data["geometry"], 0
    started = time.monotonic()
    while time.monotonic() < until:
        step += 1
        pace(interval, started, step, phase=(index * GOLDEN) % 1)
        change = {"revision": revision, "geometry": {"x0": index, "y0": step, "x1": index + 1, "y1": step + 1}}
        code, data, seconds = request(port, token, "PATCH", f"/api/annotations/{annotation}/", change)
        stats.add(seconds, code)
        if code == 200:
            revision, geometry = data["revision"], data["geometry"]
        elif code == 409:
            acks.setdefault("unexpected_conflicts", []).append(annotation)
            revision, geometry = data["current"]["revision"], data["current"]["geometry"]
    acks[f"own{index}"] = {"annotation": annotation, "revision": revision, "geometry": geometry}


def racer(
    port: int,
    seed_data: dict[str, Any],
    index: int,
    until: float,
    stats: Stats,
    acks: dict[str, Any],
    interval: float = 0.0,
) -> None:
    token = seed_data["tokens"][-1]
    known = {annotation: 1 for annotation in seed_data["shared"]}
    mine: list[tuple[str, int, dict[str, float]]] = []
    step = 0
    started = time.monotonic()
    while time.monotonic() < until:
        step += 1
        pace(interval, started, step, phase=(0.5 + index * GOLDEN) % 1)
        annotation = seed_data["shared"][step % len(known)]
        geometry = {"x0": 1000.0 + index, "y0": float(step), "x1": 1001.0 + index, "y1": float(step + 1)}
        change = {"revision": known[annotation], "geometry": geometry}
        code, data, seconds = request(port, token, "PATCH", f"/api/annotations/{annotation}/", change)
        stats.add(seconds, code)
        if code == 200:
            known[annotation] = data["revision"]
            mine.append((annotation, data["revision"], geometry))
        elif code == 409:
            known[annotation] = data["current"]["revision"]
    acks[f"racer{index}"] = mine


def run_phase(threads: list[threading.Thread]) -> float:
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def baseline(port: int, tokens: list[str], seconds: float, stats: Stats, interval: float = 0.0) -> None:
    """Plain GETs from the same number of threads, at the same cadence as the saves."""

    def loop(index: int, token: str, until: float) -> None:
        started, step = time.monotonic(), 0
        while time.monotonic() < until:
            step += 1
            pace(interval, started, step, phase=(index * GOLDEN) % 1)
            code, _, elapsed = request(port, token, "GET", "/api/projects/")
            stats.add(elapsed, code)

    until = time.monotonic() + seconds
    run_phase([threading.Thread(target=loop, args=(i, token, until)) for i, token in enumerate(tokens)])


# --- verification ----------------------------------------------------------------------------------


def verify(acks: dict[str, Any], clients: int, racers: int) -> dict[str, int]:
    """Compare what clients were told with what the database holds."""
    from annotations.models import Annotation, AnnotationRevision

    lost = overwritten = gaps = 0
    for index in range(clients):
        ack = acks.get(f"own{index}", {})
        if "annotation" not in ack:
            lost += 1
            continue
        stored = Annotation.objects.get(pk=ack["annotation"])
        if stored.revision != ack["revision"] or stored.geometry != ack["geometry"]:
            lost += 1
        revisions = list(stored.revisions.values_list("revision", flat=True))
        gaps += revisions != list(range(1, stored.revision + 1))
    accepted_shared = 0
    for index in range(racers):
        for annotation, revision, geometry in acks.get(f"racer{index}", []):
            accepted_shared += 1
            rows = AnnotationRevision.objects.filter(annotation_id=annotation, revision=revision)
            if rows.count() != 1 or rows.get().data["geometry"] != geometry:
                overwritten += 1
    shared_history = AnnotationRevision.objects.filter(annotation__client_id__isnull=True).count()
    for annotation in Annotation.objects.filter(client_id__isnull=True):
        revisions = list(annotation.revisions.values_list("revision", flat=True))
        gaps += revisions != list(range(1, annotation.revision + 1))
    # every 200 on a shared annotation is one revision after its creation, and nothing else is
    extra = shared_history - SHARED_ANNOTATIONS - accepted_shared
    return {"lost": lost, "overwritten": overwritten, "history_gaps": gaps, "unaccounted_revisions": extra}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--baseline-seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--racers", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--interval",
        type=float,
        default=0.0,
        help="seconds between one client's saves (1.0: the viewer's autosave cadence); 0: back to back",
    )
    args = parser.parse_args()

    server_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    bench_url = setup_database(server_url)
    var_dir = tempfile.mkdtemp(prefix="workbench-bench-")
    env = {**os.environ, "DATABASE_URL": bench_url, "WORKBENCH_VAR_DIR": var_dir, "DEBUG": "0"}
    env.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")
    os.environ.update(env)
    import django

    django.setup()
    server = None
    try:
        seed_data = seed(args.clients)
        server, port = start_server(args.workers, env, seed_data["tokens"][0], Path(var_dir) / "gunicorn.log")
        base = Stats()
        baseline(port, seed_data["tokens"][: args.clients + args.racers], args.baseline_seconds, base, args.interval)

        saves, acks = Stats(), {}
        until = time.monotonic() + args.seconds
        threads = [
            threading.Thread(target=own_client, args=(port, seed_data, i, until, saves, acks, args.interval))
            for i in range(args.clients)
        ] + [
            threading.Thread(target=racer, args=(port, seed_data, i, until, saves, acks, args.interval))
            for i in range(args.racers)
        ]
        wall = run_phase(threads)
        server.terminate()
        server.wait(timeout=30)
        server = None
        result = verify(acks, args.clients, args.racers)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        drop_database(server_url)

    s50, s95 = percentile(saves.latencies, 0.50), percentile(saves.latencies, 0.95)
    b50, b95 = percentile(base.latencies, 0.50), percentile(base.latencies, 0.95)
    conflicts = saves.codes.get(409, 0)
    errors = sum(n for code, n in saves.codes.items() if code >= 500) + sum(
        n for code, n in base.codes.items() if code >= 500
    )
    cadence = f"one save per {args.interval:g} s each" if args.interval > 0 else "back to back"
    print(
        f"gunicorn -w {args.workers}, PostgreSQL, {args.clients} own clients + {args.racers} racers "
        f"({cadence}), {wall:.1f} s"
    )
    print(f"baseline GET /api/projects/: {len(base.latencies)} requests, p50 {b50:.1f} ms, p95 {b95:.1f} ms")
    print(
        f"saves (POST + PATCH):        {len(saves.latencies)} requests ({len(saves.latencies) / wall:.0f}/s), "
        f"p50 {s50:.1f} ms, p95 {s95:.1f} ms"
    )
    print(f"ratio to baseline:           p50 {s50 / b50:.2f}x, p95 {s95 / b95:.2f}x")
    print(f"status codes:                {dict(sorted(saves.codes.items()))}; 5xx anywhere: {errors}")
    unexpected = len(acks.get("unexpected_conflicts", []))
    print(f"409 on shared annotations:   {conflicts} refused (racers), unexpected on own: {unexpected}")
    print(
        f"lost writes: {result['lost']}, silently overwritten: {result['overwritten']}, "
        f"history gaps: {result['history_gaps']}, unaccounted revisions: {result['unaccounted_revisions']}"
    )
    bad = (
        result["lost"] + result["overwritten"] + result["history_gaps"] + abs(result["unaccounted_revisions"]) + errors
    )
    if bad:
        print(f"server log kept: {Path(var_dir) / 'gunicorn.log'}")
        sys.exit(1)
    shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
