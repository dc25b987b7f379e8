"""Time to first image and to interactive in the viewer for one 512x512 CT slice, against reading the same file.

Starts the app (``manage.py runserver`` on a free port, a scratch var dir with its own SQLite
database and store), ingests one synthetic 512x512 int16 CT (anonymizer/deid/tests/factory.py
``make_ct``) through the real de-identification pipeline, then in headless Chromium opens
``/series/<id>/view/`` in a fresh browser context (cold HTTP cache) and reads two figures the
viewer sets, both ``performance.now()``, so measured from navigation start:

- ``data-first-image-ms``: the first pixels of the image on screen: the preview the small
  entry's worker draws (real 16-bit values windowed in the browser) after the frame that shows
  it, or Cornerstone's first IMAGE_RENDERED where there is no preview;
- ``data-interactive-ms``: Cornerstone has rendered the image and the tools and keys work.

Beside them, in the same run: reading the stored file with pydicom (parse + pixel_array) and
fetching its WADO-URI over plain HTTP. Prints medians and ratios.

    .venv/bin/python bench/first_image.py [--runs 7] [--cpu] [--keep]

Needs the viewer bundle (``make frontend``) and Debian's Chromium at /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
USERNAME, PASSWORD = "bench-reader", "bench-password-not-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(var_dir: Path) -> dict[str, str]:
    """Migrate a scratch database and ingest one CT; returns ids, paths and a token."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.files.storage import default_storage
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from anonymizer import services
    from anonymizer.deid.tests.factory import make_ct
    from anonymizer.intake import Incoming
    from anonymizer.models import Source
    from workbench.api.wado import wado_url
    from workbench.celery import app as celery_app
    from workbench.demo import to_bytes
    from workbench.models import Instance, Membership, Project, Role

    celery_app.conf.task_always_eager = True
    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user(USERNAME, password=PASSWORD)
    project = Project.objects.create(name="Bench", slug="bench")
    Membership.objects.create(project=project, user=user, role=Role.RADIOLOGIST)
    ds = make_ct(patient_name="BENCH^FIRST", patient_id="BENCH-0001")
    ds.WindowCenter, ds.WindowWidth = "40", "400"
    batch = services.batch_create(project=project, source=Source.API, user=user)
    services.batch_add(batch=batch, incoming=[Incoming("ct.dcm", to_bytes(ds))])
    instance = Instance.objects.select_related("series__study").get()
    assert instance.rows == 512 and instance.columns == 512
    return {
        "series": str(instance.series_id),
        "file": default_storage.path(instance.storage_path),
        "wado": wado_url(instance),
        "token": Token.objects.create(user=user).key,
    }


def wait_for(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 - our own local server
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server did not answer at {url}")


STAGES = """() => {
    const resource = (part) => Math.min(...performance.getEntriesByType('resource')
        .filter(e => e.name.includes(part)).map(e => e.responseEnd));
    const mark = (name) => performance.getEntriesByName(name)[0]?.startTime ?? NaN;
    return [resource('/api/series/'), mark('viewer-preview-dicom'), mark('viewer-preview-painted'),
            resource('/assets/app-'), mark('viewer-chunk-evaluated'), mark('viewer-cornerstone-ready'),
            mark('viewer-cornerstone-first-image'), mark('viewer-interactive')];
}"""
# The worker's fetch is not in the page's resource timings: the viewer marks when it landed.
STAGE_NAMES = [
    "series JSON (preloaded)",
    "DICOM file (preview worker)",
    "preview on screen",
    "viewer chunk downloaded",
    "chunk evaluated",
    "Cornerstone initialised",
    "Cornerstone first image",
    "interactive",
]


class Run(NamedTuple):
    first_image: float  # ms from navigation start
    interactive: float
    source: str  # what the first pixels were: "preview" or "cornerstone"
    stages: list[float]


def viewer_times(base: str, series: str, runs: int, cpu: bool) -> list[Run]:
    """Per run: first image, interactive, and when each stage finished (ms from navigation start)."""
    from playwright.sync_api import sync_playwright

    results = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(runs):
            context = browser.new_context()  # a cold HTTP cache every run
            page = context.new_page()
            page.goto(f"{base}/login/")
            page.fill("input[name=username]", USERNAME)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            page.goto(f"{base}/series/{series}/view/" + ("?cpu=1" if cpu else ""))
            page.wait_for_selector("#viewer[data-interactive-ms]", timeout=30_000)
            attrs = page.eval_on_selector("#viewer", "el => ({...el.dataset})")
            first, interactive = attrs.get("firstImageMs", "nan"), attrs.get("interactiveMs", "nan")
            results.append(
                Run(float(first), float(interactive), attrs.get("firstImageSource", ""), page.evaluate(STAGES))
            )
            context.close()
        browser.close()
    return results


def pydicom_times(path: str, runs: int) -> list[float]:
    from pydicom import dcmread

    times = []
    for _ in range(runs):
        start = time.perf_counter()
        ds = dcmread(path)
        ds.pixel_array  # noqa: B018 - decoding the pixels is part of reading the image
        times.append((time.perf_counter() - start) * 1000)
    return times


def http_times(url: str, token: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})  # noqa: S310
        start = time.perf_counter()
        with urllib.request.urlopen(request) as response:  # noqa: S310 - our own local server
            body = response.read()
        times.append((time.perf_counter() - start) * 1000)
        assert len(body) > 512 * 512 * 2
    return times


def bundle_kib() -> int:
    """The size of the Cornerstone3D chunk that viewer.js imports (most of the bundle)."""
    return sum(p.stat().st_size for p in (ROOT / "frontend" / "static" / "viewer" / "assets").glob("app-*.js")) // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--cpu", action="store_true", help="Cornerstone's CPU rendering (?cpu=1)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch var dir")
    args = parser.parse_args()
    if not (ROOT / "frontend" / "static" / "viewer" / "viewer.js").exists():
        raise SystemExit("build the viewer first: make frontend")

    var_dir = Path(tempfile.mkdtemp(prefix="workbench-bench-"))
    env = {
        **os.environ,
        "WORKBENCH_VAR_DIR": str(var_dir),
        "DATABASE_URL": f"sqlite:///{var_dir / 'bench.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "workbench.settings",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    server = None
    try:
        data = prepare(var_dir)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(f"{base}/login/")
        http_times(base + data["wado"], data["token"], 1)  # warm the server's imports
        viewer = viewer_times(base, data["series"], args.runs, args.cpu)
        read = pydicom_times(data["file"], args.runs)
        fetch = http_times(base + data["wado"], data["token"], args.runs)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        if not args.keep:
            shutil.rmtree(var_dir, ignore_errors=True)

    first = [run.first_image for run in viewer]
    ready = [run.interactive for run in viewer]
    v, i = statistics.median(first), statistics.median(ready)
    r, f = statistics.median(read), statistics.median(fetch)
    previews = sum(run.source == "preview" for run in viewer)
    mode = "CPU rendering" if args.cpu else "default (WebGL) rendering"
    print(f"512x512 CT, {args.runs} runs, medians; viewer with {mode}, runserver, headless Chromium")
    print(f"  viewer: navigation start -> first image    {v:8.1f} ms   (min {min(first):.1f}, max {max(first):.1f})")
    print(f"          (the preview in {previews} of {args.runs} runs, Cornerstone's own image in the rest)")
    print(f"  viewer: navigation start -> interactive    {i:8.1f} ms   (min {min(ready):.1f}, max {max(ready):.1f})")
    print("          (Cornerstone has rendered the image; tools and keys work)")
    print(f"    stages (ms from navigation start; the chunk is {bundle_kib()} KiB):")
    for k, name in enumerate(STAGE_NAMES):
        values = [run.stages[k] for run in viewer if run.stages[k] == run.stages[k]]  # not NaN
        print(f"      {name:<30} {statistics.median(values) if values else float('nan'):8.0f}")
    print(f"  pydicom: dcmread + pixel_array              {r:8.1f} ms")
    print(f"  HTTP GET of the WADO-URI (urllib)           {f:8.1f} ms")
    print(f"  ratio first image / pydicom read            {v / r:8.1f}x")
    print(f"  ratio first image / WADO fetch              {v / f:8.1f}x")
    if args.keep:
        print(f"  scratch dir kept: {var_dir}")


if __name__ == "__main__":
    main()
