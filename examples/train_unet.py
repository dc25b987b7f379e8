"""Train a small MONAI UNet on a Workbench dataset version, from the API to a validation Dice.

    .venv/bin/python examples/train_unet.py --token <API token> --dataset <dataset id>

1. Ask the API for a NIfTI export of the version (``--version``, or the latest version of
   ``--dataset``, or of the one dataset of ``--project``), poll the job until it is done.
2. Download the archive with resume (HTTP Range) into ``--out``, check its sha256 against the
   job's, unpack it, check every file against SHA256SUMS and the manifest against the version id.
3. Read the MONAI Decathlon datalist, train a 2-D UNet on the slices (resized to ``--size``
   pixels, CT window), with the version's augmentation recipe applied on the fly through the
   archive's own ``workbench_augment.py``, and print the validation Dice after every epoch.

Dice is per volume in 3-D at the archive's resolution (predictions are resized back), averaged
over the validation volumes. Exit status 0 on success, 1 when anything fails (or the final Dice
is below ``--min-dice``). Needs numpy, torch, monai and nibabel; no Django.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import importlib.util
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.data import DataLoader, Dataset, load_decathlon_datalist
from monai.losses import DiceCELoss
from monai.networks.nets import UNet
from monai.transforms import (
    Compose,
    CopyItemsd,
    EnsureChannelFirstd,
    EnsureTyped,
    LoadImaged,
    Resized,
    ScaleIntensityRanged,
)
from monai.utils import set_determinism

HU_WINDOW = (-1000.0, 400.0)  # lung to soft tissue; the images are CT in Hounsfield units
CHUNK = 1 << 20
Log = Callable[[str], None]


class WorkbenchError(RuntimeError):
    """Something the user can act on: a refused request, a failed export, a corrupt download."""


# --- the API ----------------------------------------------------------------------------------------


class _NoTokenToOtherHosts(urllib.request.HTTPRedirectHandler):
    """A download may be redirected to object storage (a presigned URL): do not send it our token."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


class Workbench:
    """The few API calls this script makes, with ``Authorization: Token <key>``."""

    def __init__(self, url: str, token: str, *, timeout: float = 60.0) -> None:
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise WorkbenchError(f"--url must be an http:// or https:// address, not {url!r}")
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout
        self._opener = urllib.request.build_opener(_NoTokenToOtherHosts)

    def open(
        self, path: str, *, body: Any = None, headers: dict[str, str] | None = None, ok: Sequence[int] = ()
    ) -> Any:
        """The response (file-like, with ``.status``), or WorkbenchError with the server's message.
        Status codes in ``ok`` come back as responses, not errors."""
        data = None if body is None else json.dumps(body).encode()
        method = "GET" if body is None else "POST"
        request = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310 (http(s), checked above)
        request.add_header("Authorization", f"Token {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            return self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            if exc.code in ok:
                return exc
            raise WorkbenchError(f"{request.method} {path}: HTTP {exc.code}: {_message(exc)}") from None
        except urllib.error.URLError as exc:
            raise WorkbenchError(f"Cannot reach Workbench at {self.url}: {exc.reason}") from None

    def json(self, path: str, body: Any = None) -> Any:
        with self.open(path, body=body) as response:
            return json.load(response)


def _message(error: urllib.error.HTTPError) -> str:
    try:
        answer = json.load(error)
    except ValueError:
        return error.reason
    return str(answer.get("message") or answer.get("detail") or answer) if isinstance(answer, dict) else str(answer)


def pick_version(api: Workbench, *, version: str = "", dataset: str = "", project: str = "") -> str:
    """``version`` itself, else the latest version of ``dataset``, else that of the project's only dataset."""
    if version:
        return version
    if not dataset:
        if not project:
            raise WorkbenchError("Say which data to train on: --version, --dataset or --project.")
        datasets, page, more = [], 1, True
        while more:  # every list under /api/ is paged: {"count", "next", "previous", "results"}
            listed = api.json(f"/api/projects/{project}/datasets/?page={page}&page_size=1000")
            datasets += listed["results"]
            page, more = page + 1, bool(listed["next"])
        if len(datasets) != 1:
            names = ", ".join(f"{d['name']!r} ({d['id']})" for d in datasets) or "none"
            raise WorkbenchError(f"The project has {len(datasets)} datasets ({names}); choose one with --dataset.")
        dataset = datasets[0]["id"]
    latest = api.json(f"/api/datasets/{dataset}/")["latest_version"]
    if not latest:
        raise WorkbenchError(f"Dataset {dataset} has no frozen version yet; freeze one first.")
    return str(latest)


def request_export(
    api: Workbench, version: str, *, export_format: str = "nifti", timeout: float = 1800, log: Log = print
) -> dict[str, Any]:
    """Ask for the export (the same request always names the same archive) and poll until it is done."""
    with api.open(f"/api/versions/{version}/exports/", body={"format": export_format}) as response:
        location = response.headers["Location"]
        job = json.load(response)
    deadline, shown = time.monotonic() + timeout, None
    while job["status"] in ("queued", "running"):
        progress = (job["status"], job["progress"]["done"], job["progress"]["total"])
        if progress != shown:
            log(f"Export {job['id']}: {progress[0]} ({progress[1]}/{progress[2]} samples)")
            shown = progress
        if time.monotonic() > deadline:
            raise WorkbenchError(f"The export is still {job['status']} after {timeout:.0f} s; is a worker running?")
        time.sleep(1.0)
        job = api.json(location)
    if job["status"] != "done":
        raise WorkbenchError(f"The export {job['status']}: {job.get('error') or 'no reason given'}")
    return dict(job)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download(api: Workbench, job: dict[str, Any], folder: Path, *, attempts: int = 5, log: Log = print) -> Path:
    """The archive as ``folder/<sha256>.zip``, checked. A partial ``.part`` file from an earlier,
    interrupted run (or attempt) is resumed with ``Range: bytes=<its size>-``; the name is the
    archive's sha256, so a part file only ever continues the same bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    target, size = folder / f"{job['sha256']}.zip", int(job["size"])
    part = target.with_name(target.name + ".part")
    if target.exists() and file_sha256(target) == job["sha256"]:
        log(f"Archive already downloaded: {target}")
        return target
    for attempt in range(1, attempts + 1):
        have = part.stat().st_size if part.exists() else 0
        if have > size:
            part.unlink()
            have = 0
        if have < size:
            try:
                _fetch(api, job["download"], part, have, log=log)
            except (OSError, http.client.HTTPException) as exc:  # a dropped connection: resume from what arrived
                if attempt == attempts:
                    raise WorkbenchError(f"The download failed {attempts} times; last: {exc}") from exc
                log(f"Download interrupted ({exc}); resuming")
                continue
        if part.exists() and part.stat().st_size == size and file_sha256(part) == job["sha256"]:
            part.replace(target)
            return target
        part.unlink(missing_ok=True)  # wrong bytes: start again from zero
        log("The downloaded archive does not match its sha256; downloading it again")
    raise WorkbenchError(f"Could not download an archive matching sha256 {job['sha256']}")


def _fetch(api: Workbench, path: str, part: Path, have: int, *, log: Log) -> None:
    headers = {"Range": f"bytes={have}-"} if have else {}
    with api.open(path, headers=headers, ok=(416,)) as response:
        if response.status == 416:  # nothing after `have`: the part file is not the archive's beginning
            part.unlink()
            return
        resumed = response.status == 206  # a server that ignores Range answers 200 with the whole file
        if resumed and not response.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
            part.unlink()
            raise WorkbenchError(f"Asked for bytes {have}- but got {response.headers.get('Content-Range')}")
        log(f"Downloading {path}" + (f" from byte {have}" if resumed else ""))
        with part.open("ab" if resumed else "wb") as out:
            while chunk := response.read(CHUNK):
                out.write(chunk)


def unpack(archive: Path, folder: Path, *, version: str) -> Path:
    """Unzip into ``folder`` and check every file against SHA256SUMS, and the manifest against the version id."""
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(folder)  # zipfile drops absolute paths and ".." from member names
    verify(folder, version=version)
    return folder


def verify(folder: Path, *, version: str) -> None:
    """Every file is listed in SHA256SUMS with its digest, and manifest.json hashes to the version id."""
    listed = {}
    for line in (folder / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, name = line.split("  ", 1)
        listed[name] = digest
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {"SHA256SUMS"}
    if present != set(listed):
        raise WorkbenchError(f"SHA256SUMS does not list exactly the archive's files: {sorted(present ^ set(listed))}")
    for name, digest in listed.items():
        if file_sha256(folder / name) != digest:
            raise WorkbenchError(f"{name} does not match its line in SHA256SUMS")
    if file_sha256(folder / "manifest.json") != version:
        raise WorkbenchError("manifest.json is not the manifest of the version asked for")


def fetch_export(
    url: str, token: str, out: Path, *, version: str = "", dataset: str = "", project: str = "", log: Log = print
) -> Path:
    """Steps 1 and 2: the unpacked, checked NIfTI export of the chosen version, under ``out``."""
    api = Workbench(url, token)
    version = pick_version(api, version=version, dataset=dataset, project=project)
    log(f"Version {version}")
    job = request_export(api, version, log=log)
    archive = download(api, job, out, log=log)
    return unpack(archive, out / job["sha256"], version=version)


# --- training ---------------------------------------------------------------------------------------


def load_augmentation(archive_dir: Path, *, log: Log = print) -> Compose | None:
    """The version's recipe as 2-D MONAI transforms, built by the archive's own workbench_augment.py."""
    source, recipe_file = archive_dir / "workbench_augment.py", archive_dir / "augmentation.json"
    if not source.exists() or not recipe_file.exists():
        log("No augmentation in the archive: training without it")
        return None
    recipe = json.loads(recipe_file.read_text(encoding="utf-8"))
    if recipe.get("materialize"):
        log("The augmented copies are in the archive (materialized): no augmentation on the fly")
        return None
    # Code from the archive, which unpack() checked against SHA256SUMS from the Workbench asked.
    spec = importlib.util.spec_from_file_location("workbench_augment", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    log(f"Augmentation on the fly: {', '.join(t['name'] for t in recipe['transforms']) or 'none'}")
    # The NIfTI arrays are (x, y, z); a slice keeps the recipe's in-plane axes (0, 1).
    transforms: Compose = module.build_transforms(recipe, keys=("image", "label"), spatial_dims=2)
    return transforms


def load_volumes(archive_dir: Path, split: str, *, size: int, foreground: Sequence[int]) -> list[dict[str, Any]]:
    """The split's volumes: HU image and binary label (1, size, size, z), and the label as it was in "label_full"."""
    items = load_decathlon_datalist(archive_dir / "datalist.json", data_list_key=split, base_dir=archive_dir)
    prepare = Compose(
        [
            LoadImaged(["image", "label"], image_only=True),
            EnsureChannelFirstd(["image", "label"]),
            EnsureTyped(["image", "label"], data_type="tensor", dtype=torch.float32, track_meta=False),
            CopyItemsd("label", names="label_full"),
            Resized(["image", "label"], spatial_size=(size, size, -1), mode=("area", "nearest-exact")),
        ]
    )
    wanted = torch.tensor(list(foreground), dtype=torch.float32)
    volumes = []
    for item in items:
        volume = prepare(item)
        for key in ("label", "label_full"):
            volume[key] = torch.isin(volume[key], wanted).float()
        volumes.append(volume)
    return volumes


def slices_of(volumes: Sequence[dict[str, Any]]) -> list[dict[str, torch.Tensor]]:
    return [
        {"image": v["image"][..., k], "label": v["label"][..., k]} for v in volumes for k in range(v["image"].shape[-1])
    ]


def dice(prediction: torch.Tensor, truth: torch.Tensor) -> float:
    """2|A∩B| / (|A| + |B|) of two boolean masks; 1.0 when both are empty."""
    total = int(prediction.sum() + truth.sum())
    return 1.0 if total == 0 else 2.0 * int((prediction & truth).sum()) / total


@torch.no_grad()
def evaluate(model: torch.nn.Module, volumes: Sequence[dict[str, Any]], device: torch.device) -> float:
    """Mean 3-D Dice over the volumes, the predictions resized back to each volume's own resolution."""
    model.eval()
    normalize = _normalize()
    scores = []
    for volume in volumes:
        image = torch.as_tensor(normalize({"image": volume["image"]})["image"])  # (1, size, size, z)
        batch = image.permute(3, 0, 1, 2).to(device)  # the slices as a batch: (z, 1, size, size)
        full = volume["label_full"][0]  # (x, y, z)
        logits = F.interpolate(model(batch), size=full.shape[:2], mode="bilinear", align_corners=False)
        prediction = logits.argmax(1).permute(1, 2, 0).cpu().bool()  # back to (x, y, z)
        scores.append(dice(prediction, full.bool()))
    return float(np.mean(scores))


def _normalize() -> ScaleIntensityRanged:
    return ScaleIntensityRanged("image", a_min=HU_WINDOW[0], a_max=HU_WINDOW[1], b_min=0.0, b_max=1.0, clip=True)


def train(
    archive_dir: Path,
    epochs: int = 20,
    *,
    size: int = 128,
    batch_size: int = 4,
    learning_rate: float = 3e-3,
    label: str = "",
    seed: int = 0,
    out: Path | None = None,
    log: Log = print,
) -> float:
    """Train on the archive's ``training`` list, validate on ``validation``; the last epoch's validation Dice.

    ``label`` names the class to segment (all labelled voxels when empty). The model is saved as
    ``out/unet.pt`` when ``out`` is given; the test split, when there is one, is scored at the end.
    """
    set_determinism(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    datalist = json.loads((archive_dir / "datalist.json").read_text(encoding="utf-8"))
    if not datalist.get("validation"):
        raise WorkbenchError("The version has no validation split; freeze one with a validation share.")
    names = {name: int(index) for index, name in datalist["labels"].items() if int(index) > 0}
    if label and label not in names:
        raise WorkbenchError(f"No label {label!r} in this version; it has {', '.join(names) or 'none'}.")
    foreground = [names[label]] if label else list(names.values())
    train_volumes = load_volumes(archive_dir, "training", size=size, foreground=foreground)
    validation = load_volumes(archive_dir, "validation", size=size, foreground=foreground)
    augment = load_augmentation(archive_dir, log=log)
    per_slice = Compose([augment, _normalize()] if augment is not None else [_normalize()])
    slices = slices_of(train_volumes)
    loader = DataLoader(
        Dataset(slices, transform=per_slice),
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    log(f"{len(train_volumes)} training volumes ({len(slices)} slices), {len(validation)} validation volumes")

    model = UNet(
        spatial_dims=2, in_channels=1, out_channels=2, channels=(16, 32, 64, 128), strides=(2, 2, 2), num_res_units=2
    ).to(device)
    loss_function = DiceCELoss(to_onehot_y=True, softmax=True, batch=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    started, score = time.monotonic(), 0.0
    for epoch in range(1, epochs + 1):
        model.train()
        losses = []
        for batch in loader:
            optimizer.zero_grad()
            loss = loss_function(model(batch["image"].to(device)), batch["label"].to(device))
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        schedule.step()
        score = evaluate(model, validation, device)
        elapsed = time.monotonic() - started
        log(f"epoch {epoch:3d}/{epochs}  loss {np.mean(losses):.4f}  validation Dice {score:.3f}  ({elapsed:.0f} s)")
    if datalist.get("test"):
        test = load_volumes(archive_dir, "test", size=size, foreground=foreground)
        log(f"Test Dice ({len(test)} volumes): {evaluate(model, test, device):.3f}")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), out / "unet.pt")
        log(f"Model saved to {out / 'unet.pt'}")
    return score


# --- command line -----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="Workbench's address (default: make run's)")
    parser.add_argument("--token", default=os.environ.get("WORKBENCH_TOKEN", ""), help="API token (or WORKBENCH_TOKEN)")
    chosen = parser.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--version", default="", help="a dataset version id")
    chosen.add_argument("--dataset", default="", help="a dataset id: its latest version")
    chosen.add_argument("--project", default="", help="a project id: the latest version of its only dataset")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--size", type=int, default=128, help="slices are resized to size x size pixels to train")
    parser.add_argument("--label", default="", help="the label to segment (default: every labelled voxel)")
    parser.add_argument(
        "--out", type=Path, default=Path("var/train-unet"), help="the archive, its unpacked files and the model"
    )
    parser.add_argument("--min-dice", type=float, default=0.0, help="exit with 1 when the final Dice is lower")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("an API token is needed: --token or the WORKBENCH_TOKEN environment variable")
    try:
        archive_dir = fetch_export(
            args.url, args.token, args.out, version=args.version, dataset=args.dataset, project=args.project
        )
        score = train(archive_dir, args.epochs, size=args.size, label=args.label, out=args.out)
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Final validation Dice: {score:.3f}")
    if score < args.min_dice:
        print(f"error: the validation Dice is below --min-dice {args.min_dice}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
