"""Uploading a large study zip through the API under gunicorn, against a sink that only writes to disk.

Builds study zips of synthetic 512x512 CT slices (anonymizer/deid/tests/factory.py ``make_ct``,
PHI planted; stored, not deflated, so the bytes on the wire are the file's), then for each
size starts, in a scratch var dir with its own SQLite database and filesystem broker:

- the app as the README documents it: ``gunicorn workbench.wsgi`` (one sync worker, the 30 s
  worker timeout) and a Celery worker (``-Q deid,export,default --concurrency 2``);
- a sink: ``gunicorn bench.upload_large:sink_app``, a WSGI app that writes every request
  body to one file and answers as a tus server would (the baseline: what HTTP and the disk
  cost at all).

The same client (``http.client``, 32 MB chunks read from the zip) sends the same bytes to
both, first as a resumable (tus) upload, then as one multipart POST (the path that gunicorn's
timeout cut off before uploads were sealed on arrival). It prints MB/s for each beside the
sink's and their ratio, how long the worker took to expand and de-identify the study, and the
peak memory (VmHWM, the kernel's own high-water mark of resident memory) of the web and
worker processes at each size: memory should be flat in the upload size.

    .venv/bin/python bench/upload_large.py [--files 2000] [--small 500] [--keep]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CHUNK = 32 * 1024 * 1024
MB = 1_000_000


def sink_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """A tus-shaped endpoint that only writes request bodies to disk."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    method = environ["REQUEST_METHOD"]
    path = Path(os.environ["BENCH_SINK_DIR"]) / "body.bin"
    with open(path, "ab" if method == "PATCH" else "wb") as fh:
        remaining = length
        while remaining > 0:
            chunk = environ["wsgi.input"].read(min(remaining, 1024 * 1024))
            if not chunk:
                break
            fh.write(chunk)
            remaining -= len(chunk)
    headers = [("Tus-Resumable", "1.0.0"), ("Content-Length", "0")]
    if method == "POST" and environ.get("HTTP_UPLOAD_LENGTH") is not None:
        start_response("201 Created", [*headers, ("Location", "/sink/upload/")])
    elif method == "PATCH":
        offset = int(environ.get("HTTP_UPLOAD_OFFSET") or 0) + length
        start_response("204 No Content", [*headers, ("Upload-Offset", str(offset))])
    else:
        start_response("202 Accepted", headers)
    return [b""]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_zip(path: Path, files: int) -> int:
    import pydicom.uid

    from anonymizer.deid.tests.factory import make_ct

    study = pydicom.uid.generate_uid()
    ds = make_ct(patient_name="BENCH^UPLOAD", patient_id="BENCH-0001", study_uid=study)
    series = pydicom.uid.generate_uid()
    ds.SeriesInstanceUID = series
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for n in range(files):
            ds.InstanceNumber = n + 1
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
            buffer = BytesIO()
            ds.save_as(buffer, enforce_file_format=True)
            archive.writestr(f"study/{n:05d}.dcm", buffer.getvalue())
    return path.stat().st_size


def prepare() -> tuple[str, str]:
    """Migrate the scratch database; an admin, a project and a token. Returns (project id, token)."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from workbench import crypto
    from workbench.models import Membership, Project, Role

    call_command("migrate", verbosity=0)
    crypto.encrypt(b"")  # creates the vault key once, before two processes race for it
    user = get_user_model().objects.create_user(username="bench", password="bench-password-not-secret")
    project = Project.objects.create(name="Bench", slug="bench")
    Membership.objects.create(project=project, user=user, role=Role.ADMIN)
    token, _ = Token.objects.get_or_create(user=user)
    return str(project.pk), token.key


def _descendants(pid: int) -> list[int]:
    out, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            out.append(child)
            frontier.append(child)
    return out


def peak_rss_mb(pid: int) -> float:
    """The largest VmHWM (peak resident memory) of a process and its descendants, in MB."""
    peak = 0
    for p in _descendants(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) * 1024)
        except OSError:
            continue
    return peak / MB


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on port {port}")


def send(port: int, method: str, path: str, headers: dict[str, str], body: Any = None, length: int = 0) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.putrequest(method, path)
    for name, value in {**headers, "Content-Length": str(length)}.items():
        conn.putheader(name, value)
    conn.endheaders()
    for piece in body or ():
        conn.send(piece)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, response.headers, data


def _file_pieces(path: Path, start: int, size: int) -> Any:
    with open(path, "rb") as fh:
        fh.seek(start)
        remaining = size
        while remaining > 0:
            piece = fh.read(min(remaining, 1024 * 1024))
            if not piece:
                return
            remaining -= len(piece)
            yield piece


def tus_upload(port: int, create_path: str, token: str, archive: Path) -> tuple[float, str]:
    """Seconds to send the zip as a tus upload (create + PATCH chunks); returns the batch id."""
    size = archive.stat().st_size
    auth = {"Authorization": f"Token {token}", "Tus-Resumable": "1.0.0"}
    started = time.monotonic()
    status, headers, data = send(
        port, "POST", create_path, {**auth, "Upload-Length": str(size), "Upload-Metadata": "filename c3R1ZHkuemlw"}
    )
    if status != 201:
        raise RuntimeError(f"tus create answered {status}: {data[:300]!r}")
    location = urlsplit(headers["Location"]).path
    batch = headers.get("Workbench-Batch", "")
    offset = 0
    while offset < size:
        chunk = min(CHUNK, size - offset)
        pieces = _file_pieces(archive, offset, chunk)
        status, headers, data = send(
            port,
            "PATCH",
            location,
            {**auth, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
            pieces,
            chunk,
        )
        if status != 204:
            raise RuntimeError(f"tus PATCH answered {status}: {data[:300]!r}")
        offset = int(headers["Upload-Offset"])
    return time.monotonic() - started, batch


def multipart_upload(port: int, path: str, token: str, archive: Path) -> tuple[float, int, str]:
    """Seconds to POST the zip as one multipart body; returns (seconds, status, batch id)."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="study.zip"\r\n'
        "Content-Type: application/zip\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = archive.stat().st_size

    def pieces() -> Any:
        yield head
        yield from _file_pieces(archive, 0, size)
        yield tail

    headers = {"Authorization": f"Token {token}", "Content-Type": f"multipart/form-data; boundary={boundary}"}
    started = time.monotonic()
    try:
        status, _, data = send(port, "POST", path, headers, pieces(), len(head) + size + len(tail))
    except (ConnectionError, http.client.HTTPException):
        return time.monotonic() - started, 0, ""
    seconds = time.monotonic() - started
    try:
        batch = json.loads(data).get("id", "")
    except ValueError:
        batch = ""
    return seconds, status, batch


def wait_batches(port: int, token: str, batches: list[str], timeout: float) -> float:
    started = time.monotonic()
    pending = [b for b in batches if b]
    while pending and time.monotonic() - started < timeout:
        for batch in list(pending):
            status, _, data = send(port, "GET", f"/api/batches/{batch}/", {"Authorization": f"Token {token}"})
            if status == 200 and json.loads(data)["state"] == "finished":
                pending.remove(batch)
        time.sleep(1)
    if pending:
        raise RuntimeError(f"batches still processing after {timeout:.0f}s")
    return time.monotonic() - started


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    fh = open(log, "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


# The filesystem broker polls once a second by default, which would make the worker wait for
# its queue rather than work; a tenth of a second, as a Redis broker would not need.
WORKER = [
    sys.executable,
    "-c",
    "from workbench.celery import app; app.conf.broker_transport_options['polling_interval'] = 0.1; "
    "app.worker_main(['worker', '-Q', 'deid,export,default', '--concurrency', '2', '--loglevel', 'WARNING'])",
]


def run_size(files: int, scratch: Path) -> dict[str, Any]:
    var_dir = scratch / f"var-{files}"
    sink_dir = scratch / f"sink-{files}"
    var_dir.mkdir()
    sink_dir.mkdir()
    archive = scratch / f"study-{files}.zip"
    size = build_zip(archive, files)
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "WORKBENCH_VAR_DIR": str(var_dir),
        "DJANGO_SETTINGS_MODULE": "workbench.settings",
        "BENCH_SINK_DIR": str(sink_dir),
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    project, token = subprocess_prepare(env)
    api_port, sink_port = free_port(), free_port()
    web = start([str(bin_dir / "gunicorn"), "workbench.wsgi", "-b", f"127.0.0.1:{api_port}"], env, scratch / "web.log")
    sink = start(
        [str(bin_dir / "gunicorn"), "bench.upload_large:sink_app", "-b", f"127.0.0.1:{sink_port}"],
        env,
        scratch / "sink.log",
    )
    procs = [web, sink]
    try:
        wait_port(api_port)
        wait_port(sink_port)
        for port in (api_port, sink_port):  # the first request loads the app: not part of the figure
            send(port, "GET", "/api/projects/", {"Authorization": f"Token {token}"})
        result: dict[str, Any] = {"files": files, "bytes": size}
        result["sink_tus"], _ = tus_upload(sink_port, "/sink/", token, archive)
        result["api_tus"], tus_batch = tus_upload(api_port, f"/api/projects/{project}/uploads/", token, archive)
        result["sink_multipart"], _, _ = multipart_upload(sink_port, "/sink/", token, archive)
        result["api_multipart"], status, mp_batch = multipart_upload(
            api_port, f"/api/projects/{project}/batches/", token, archive
        )
        result["multipart_status"] = status
        # The worker starts once the uploads are in, so it does not compete with them for the CPUs.
        worker = start(WORKER, env, scratch / "worker.log")
        procs.append(worker)
        result["ingest_seconds"] = wait_batches(api_port, token, [tus_batch, mp_batch], timeout=3600)
        result["web_peak_mb"] = peak_rss_mb(web.pid)
        result["worker_peak_mb"] = peak_rss_mb(worker.pid)
        result["plaintext_left"] = _plaintext_left(var_dir)
        return result
    finally:
        for proc in procs:
            stop(proc)


def subprocess_prepare(env: dict[str, str]) -> tuple[str, str]:
    """prepare() in a fresh interpreter: each size gets its own database and settings."""
    code = "import json; from bench.upload_large import prepare; print(json.dumps(prepare()))"
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, cwd=ROOT)
    project, token = json.loads(out.stdout.decode().strip().splitlines()[-1])
    return project, token


def _plaintext_left(var_dir: Path) -> int:
    """Files under the var dir, or Django spool files in the temp dir, that hold the planted
    patient name in the clear."""
    found = 0
    spool = Path(tempfile.gettempdir()).glob("tmp*.upload*")
    for paths in (var_dir.rglob("*"), spool):
        for path in paths:
            try:
                if path.is_file() and path.stat().st_size < 2 * 1024**3 and b"BENCH^UPLOAD" in path.read_bytes():
                    found += 1
            except OSError:
                continue
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--small", type=int, default=500, help="the second, smaller size (0: skip)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="wb-bench-upload-", dir=os.environ.get("BENCH_SCRATCH")))
    try:
        results = [run_size(n, scratch) for n in ([args.small] if args.small else []) + [args.files]]
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"{'files':>6} {'MB':>7} {'path':>9} {'API MB/s':>9} {'sink MB/s':>9} {'ratio':>6}")
    for r in results:
        mb = r["bytes"] / MB
        for kind in ("tus", "multipart"):
            api, sink = mb / r[f"api_{kind}"], mb / r[f"sink_{kind}"]
            print(f"{r['files']:>6} {mb:>7.0f} {kind:>9} {api:>9.1f} {sink:>9.1f} {api / sink:>6.2f}")
    for r in results:
        print(
            f"{r['files']} files: multipart answered {r['multipart_status']}; expanded and de-identified both "
            f"batches in {r['ingest_seconds']:.0f}s; peak RSS web {r['web_peak_mb']:.0f} MB, "
            f"worker {r['worker_peak_mb']:.0f} MB; files with the patient's name in the clear: {r['plaintext_left']}"
        )


if __name__ == "__main__":
    main()
