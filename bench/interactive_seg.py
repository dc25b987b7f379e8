"""Latency of the reader's segmentation tools through the API, beside the bare SimpleITK call.

Builds a scratch install (SQLite and storage in a temporary folder), a project with a
reader, and a series of 512x512 CT slices (a body of soft tissue, two lungs, bone and
lesions, Gaussian noise), stored as DICOM. Then, for ``--requests`` requests each:

* **grow from seeds**: ``POST /api/assignments/<id>/tools/grow-from-seeds/`` with a click
  inside a lesion and one outside it, on a slice chosen in turn; and
* **threshold brush**: ``POST .../tools/threshold-brush/`` (20 mm, 0-100 HU) at a lesion,

through Django's test client with token authentication (the whole middleware stack, the
access checks, the storage read and the DICOM decode; no network). The baseline, in the same
run, is the same tool function called in-process on the already-decoded slice: what the
API adds is the difference. Prints p50/p95 in milliseconds and the ratio API/baseline.
The target (issue 12): p95 under 300 ms on the CPU.

    .venv/bin/python bench/interactive_seg.py [--requests 200] [--slices 8]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SIZE = 512
LESIONS = [(180, 300, 14), (330, 280, 10), (256, 380, 18)]  # x, y, radius in pixels


def ct_slice(seed: int) -> np.ndarray:
    """Hounsfield units of a synthetic 512x512 chest-like slice."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    hu = np.full((SIZE, SIZE), -1000.0)
    hu[((xx - 256) / 220) ** 2 + ((yy - 256) / 170) ** 2 <= 1] = 40
    for cx in (170, 342):
        hu[((xx - cx) / 70) ** 2 + ((yy - 240) / 110) ** 2 <= 1] = -850
    hu[((xx - 256) / 25) ** 2 + ((yy - 390) / 25) ** 2 <= 1] = 700  # a vertebra
    for x, y, r in LESIONS:
        hu[(xx - x) ** 2 + (yy - y) ** 2 <= r * r] = 60 if hu[y, x] > -500 else 30
    return hu + rng.normal(0, 12, hu.shape)


def dicom_bytes(hu: np.ndarray, sop_uid: str) -> bytes:
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = CTImageStorage, sop_uid
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = CTImageStorage, sop_uid, "CT"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Rows = ds.Columns = SIZE
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleIntercept, ds.RescaleSlope, ds.PixelSpacing = -1024, 1, [0.7, 0.7]
    ds.PixelData = np.round(hu + 1024).astype(np.int16).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def setup(slices: int) -> dict[str, Any]:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from rest_framework.authtoken.models import Token

    from annotations import services
    from workbench.models import Instance, Membership, Patient, Project, Role, Series, Study

    User = get_user_model()  # noqa: N806 - Django's idiom
    admin, reader = User.objects.create_user("bench-admin"), User.objects.create_user("bench-reader")
    project = Project.objects.create(name="Bench", slug="bench")
    Membership.objects.create(project=project, user=admin, role=Role.ADMIN)
    Membership.objects.create(project=project, user=reader, role=Role.RADIOLOGIST)
    patient = Patient.objects.create(project=project, pseudo_id="PBENCH")
    study = Study.objects.create(project=project, patient=patient, study_uid="2.25.100")
    series = Series.objects.create(study=study, series_uid="2.25.101", modality="CT", number=1)
    images = []
    for index in range(slices):
        hu = ct_slice(index)
        sop = f"2.25.102{index}"
        data = dicom_bytes(hu, sop)
        path = default_storage.save(f"bench/{sop}.dcm", ContentFile(data))
        instance = Instance.objects.create(
            series=series, sop_uid=sop, sop_class_uid="1.2.840.10008.5.1.4.1.1.2", number=index + 1, rows=SIZE,
            columns=SIZE, pixel_spacing=[0.7, 0.7], sha256="0" * 64, size=len(data), storage_path=path,
        )  # fmt: skip
        images.append((instance.sop_uid, hu.astype(np.float32)))
    (assignment,) = services.assignment_create(series=series, readers=[reader], user=admin)
    return {"assignment": str(assignment.pk), "images": images, "token": Token.objects.create(user=reader).key}


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def run(world: dict[str, Any], requests: int) -> None:
    from rest_framework.test import APIClient

    from annotations.interactive import grow_from_seeds, threshold_stroke

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {world['token']}")
    base = f"/api/assignments/{world['assignment']}/tools/"

    def grow_body(i: int) -> tuple[dict[str, Any], np.ndarray]:
        instance, hu = world["images"][i % len(world["images"])]
        x, y, r = LESIONS[i % len(LESIONS)]
        inside, outside = [[x, y]], [[x + 3 * r, y]]
        return {"sop_instance_uid": instance, "inside": inside, "outside": outside}, hu

    def brush_body(i: int) -> tuple[dict[str, Any], np.ndarray]:
        instance, hu = world["images"][i % len(world["images"])]
        x, y, _r = LESIONS[i % len(LESIONS)]
        return {"sop_instance_uid": instance, "points": [[x, y]], "radius_mm": 20, "low": 0, "high": 100}, hu

    tools = {
        "grow from seeds": (
            "grow-from-seeds/",
            grow_body,
            lambda b, hu: grow_from_seeds(hu, b["inside"], b["outside"], spacing=(0.7, 0.7)),
        ),
        "threshold brush": (
            "threshold-brush/",
            brush_body,
            lambda b, hu: threshold_stroke(hu, b["points"], b["radius_mm"], b["low"], b["high"], spacing=(0.7, 0.7)),
        ),
    }
    print(f"{requests} requests per tool on {len(world['images'])} slices of {SIZE}x{SIZE} CT; cores: {os.cpu_count()}")
    for name, (path, body_for, direct) in tools.items():
        api_ms, direct_ms = [], []
        for i in range(requests + 5):  # the first five warm the caches and are not counted
            body, hu = body_for(i)
            start = time.perf_counter()
            response = client.post(base + path, body, format="json")
            api = time.perf_counter() - start
            if response.status_code != 200:
                raise SystemExit(f"{name}: {response.status_code} {response.content[:300]!r}")
            start = time.perf_counter()
            direct(body, hu)
            bare = time.perf_counter() - start
            if i >= 5:
                api_ms.append(api * 1000)
                direct_ms.append(bare * 1000)
        p50, p95 = statistics.median(api_ms), percentile(api_ms, 95)
        b50, b95 = statistics.median(direct_ms), percentile(direct_ms, 95)
        print(
            f"{name:16s} API p50 {p50:6.1f} ms  p95 {p95:6.1f} ms   in-process p50 {b50:6.1f} ms  p95 {b95:6.1f} ms"
            f"   ratio p95 {p95 / b95:5.2f}   target p95 < 300 ms: {'met' if p95 < 300 else 'NOT met'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--slices", type=int, default=8)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="interactive-bench-"))
    os.environ.update({"WORKBENCH_VAR_DIR": str(scratch), "DJANGO_SETTINGS_MODULE": "workbench.settings"})
    os.environ.pop("DATABASE_URL", None)
    try:
        run(setup(args.slices), args.requests)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
