"""Batch pre-annotation through the Celery queue, beside the raw forward pass of the same network.

Builds a scratch install (SQLite, storage and the filesystem broker in a temporary folder), a
project with a mask label, and ``--slices`` synthetic 512x512 CT slices (a body, two lungs and
round lesions, noise) stored as DICOM in one series. Trains the segmentation handler for a few
epochs on synthetic slices of the same kind (``--train-slices``, so proposals look like real
ones: a few objects per slice, not noise) and registers it. Then, in the same run:

1. **pipeline**: starts one real worker (``celery -A workbench worker -Q inference
   --concurrency 1``, the command a GPU machine runs), waits until it answers, creates an
   inference run over the series (``inference.runs.inference_run_create``: the same service as
   the API and ``manage.py preannotate``), and times it from creation to ``done``: the queue,
   the stored files read and decoded, pre-processing, the network, post-processing and the
   proposals written.
2. **raw forward pass**: the same network (the worker's handler class, same weights) on the
   same slices, already decoded and pre-processed into tensors, batch by batch; once plain, and
   once with the three flipped passes and the entropy the run adds for each proposal's
   uncertainty map (inference.handlers.uncertainty): the floor of the same work.
3. **training epoch**: the seconds of one epoch of ``handler.train`` on the training slices.

Prints slices/s for each, the pipeline's ratio to the floor with the flips (target >= 0.7) and
the epoch time, with the device (``cuda`` when the machine has one, else the CPU). Target on one
data-centre GPU: >= 100 slices/s through the pipeline.

    .venv/bin/python bench/inference_throughput.py [--slices 512] [--batch 16] [--train-slices 96]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.interactive_seg import SIZE, ct_slice, dicom_bytes  # noqa: E402


def lesion_mask(seed: int) -> np.ndarray:
    """The lesions of bench.interactive_seg.ct_slice: the label the model learns."""
    from bench.interactive_seg import LESIONS

    yy, xx = np.mgrid[:SIZE, :SIZE]
    mask = np.zeros((SIZE, SIZE), dtype=np.uint8)
    for x, y, r in LESIONS:
        mask[(xx - x) ** 2 + (yy - y) ** 2 <= r * r] = 1
    return mask


def train_model(work: Path, slices: int, config: Any) -> tuple[bytes, float, float]:
    """Weights of a few epochs on synthetic slices, their Dice, and the seconds of one epoch."""
    from inference.handlers import handler_class

    for split, count in (("train", slices), ("validation", max(8, slices // 6))):
        folder = work / "data" / split
        folder.mkdir(parents=True)
        for n in range(count):
            seed = n if split == "train" else 10_000 + n
            np.savez(folder / f"{n:05d}.npz", image=ct_slice(seed).astype(np.float32), label=lesion_mask(seed))
    epochs: list[float] = []
    started = [time.perf_counter()]

    def progress(report: Any) -> bool:
        now = time.perf_counter()
        epochs.append(now - started[0])
        started[0] = now
        return True

    result = handler_class("segmentation").train(work / "data", config, work / "run", progress=progress)
    return result.weights, result.dice, float(np.median(epochs))


def setup(slices: int, weights: bytes, config: Any) -> dict[str, Any]:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from annotations.schemas import label_schema_create
    from inference.services import model_version_register
    from workbench.models import Instance, Membership, Patient, Project, Role, Series, Study

    admin = get_user_model().objects.create_user("bench-admin")
    project = Project.objects.create(name="Bench", slug="bench")
    Membership.objects.create(project=project, user=admin, role=Role.ADMIN)
    label_schema_create(project=project, labels=[{"name": "Nodule", "color": "#ff0000", "kind": "mask"}])
    patient = Patient.objects.create(project=project, pseudo_id="PBENCH")
    study = Study.objects.create(project=project, patient=patient, study_uid="2.25.200")
    warm = Series.objects.create(study=study, series_uid="2.25.201", modality="CT", number=1)
    series = Series.objects.create(study=study, series_uid="2.25.202", modality="CT", number=2)
    images = []
    for index in range(slices + 4):
        target = warm if index < 4 else series
        hu = ct_slice(index)
        sop = f"2.25.203{index}"
        data = dicom_bytes(hu, sop)
        path = default_storage.save(f"bench/{sop}.dcm", ContentFile(data))
        Instance.objects.create(
            series=target, sop_uid=sop, sop_class_uid="1.2.840.10008.5.1.4.1.1.2", number=index + 1, rows=SIZE,
            columns=SIZE, pixel_spacing=[0.7, 0.7], sha256="0" * 64, size=len(data), storage_path=path,
        )  # fmt: skip
        if target == series:
            images.append(np.asarray(hu, dtype=np.float32))
    model, _ = model_version_register(
        project=project,
        kind="segmentation",
        name="bench",
        weights=weights,
        config=config.to_dict(),
        labels=["Nodule"],
        input_spec={"modality": "CT", "dims": 2, "window": list(config.window), "size": config.size},
    )
    return {"project": project, "model": model, "admin": admin, "warm": warm, "series": series, "images": images}


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "celery", "-A", "workbench", "worker", "-Q", "inference"]
    command += ["--concurrency", "1", "--loglevel", "WARNING", "--without-heartbeat", "--without-gossip"]
    return subprocess.Popen(command, cwd=ROOT, env=env)


def run_and_wait(world: dict[str, Any], series: Any, *, uncertainty: bool, timeout: float = 1800) -> tuple[float, Any]:
    from inference.models import InferenceRun, Proposal, RunStatus
    from inference.runs import inference_run_create

    Proposal.objects.filter(series=series).delete()  # each run starts from the same state
    start = time.perf_counter()
    run = inference_run_create(
        project=world["project"], model=world["model"], series_ids=[series.pk], user=None, uncertainty=uncertainty
    )
    while time.perf_counter() - start < timeout:
        current = InferenceRun.objects.get(pk=run.pk)
        if current.status in (RunStatus.DONE, RunStatus.FAILED):
            if current.status == RunStatus.FAILED:
                raise SystemExit(f"the run failed: {current.error}")
            return time.perf_counter() - start, current
        time.sleep(0.05)
    raise SystemExit("the run did not finish in time (is the worker running?)")


def raw_forward(world: dict[str, Any], batch: int) -> tuple[float, float, str]:
    """Seconds of the network alone on the pre-processed tensors of the same slices: one plain
    pass per batch, then the plain pass and the three flips of the uncertainty maps."""
    import torch

    from inference.handlers import handler_class
    from inference.handlers.uncertainty import entropy_maps
    from inference.services import model_weights

    handler = handler_class("segmentation")(model_weights(world["model"]), world["model"].config)
    images = world["images"]
    tensors = [handler.preprocess(images[i : i + batch]) for i in range(0, len(images), batch)]
    handler.infer(tensors[0])  # warm-up: first-call allocations and kernel choice
    if handler.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for one in tensors:
        handler.infer(one)
    if handler.device.type == "cuda":
        torch.cuda.synchronize()
    plain = time.perf_counter() - start
    start = time.perf_counter()
    with torch.no_grad():
        for one in tensors:
            entropy_maps(handler, one, probabilities=handler.infer(one))
    if handler.device.type == "cuda":
        torch.cuda.synchronize()
    return plain, time.perf_counter() - start, str(handler.device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=512)
    parser.add_argument("--batch", type=int, default=16, help="the pipeline's batch size (inference.runs)")
    parser.add_argument("--train-slices", type=int, default=64)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="inference-bench-"))
    env = {**os.environ, "WORKBENCH_VAR_DIR": str(scratch), "DJANGO_SETTINGS_MODULE": "workbench.settings"}
    env.pop("DATABASE_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    os.environ.clear()
    os.environ.update(env)
    worker = None
    try:
        from inference.handlers.base import TrainConfig

        config = TrainConfig(labels=("Nodule",), epochs=12, seed=0)
        weights, dice, epoch_s = train_model(scratch / "train", args.train_slices, config)
        world = setup(args.slices, weights, config)
        worker = start_worker(env)
        warm_s, _ = run_and_wait(world, world["warm"], uncertainty=True)  # the worker is up, torch imported
        pipeline_s, run = run_and_wait(world, world["series"], uncertainty=False)
        mapped_s, mapped = run_and_wait(world, world["series"], uncertainty=True)
        forward_s, tta_s, device = raw_forward(world, args.batch)
        slices = len(world["images"])
        pipe_rate, raw_rate, tta_rate = slices / pipeline_s, slices / forward_s, slices / tta_s
        mapped_rate = slices / mapped_s
        print(f"cores: {os.cpu_count()}; device: {device}; {slices} slices of {SIZE}x{SIZE} CT; batch {args.batch}")
        print(f"network: UNet {config.channels} at {config.size}x{config.size}; validation Dice {dice:.2f}")
        print(
            f"pipeline, no maps (queue, files, pre/post, proposals):  {pipe_rate:7.1f} slices/s "
            f"({pipeline_s:.1f} s, {run.proposals_count} proposals; warm-up run {warm_s:.1f} s)"
        )
        print(f"raw forward pass, same network and tensors:              {raw_rate:7.1f} slices/s ({forward_s:.2f} s)")
        print(f"ratio pipeline / raw (target >= 0.7): {pipe_rate / raw_rate:.2f}")
        print(
            f"with uncertainty maps (pipeline):                       {mapped_rate:7.1f} slices/s "
            f"({mapped_s:.1f} s, {mapped.proposals_count} proposals)"
        )
        print(f"raw forward pass and 3 flips (what the maps cost):       {tta_rate:7.1f} slices/s ({tta_s:.2f} s)")
        print(f"ratio pipeline with maps / raw with flips: {mapped_rate / tta_rate:.2f}")
        print(f"training epoch ({args.train_slices} slices of {SIZE}x{SIZE}, on {device}): {epoch_s:.1f} s")
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
