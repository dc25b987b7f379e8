"""examples/train_unet.py end to end: the demo's dataset, exported and downloaded over real HTTP
with a real token (live_server), unpacked, checked, and trained to a validation Dice of 0.8."""

from __future__ import annotations

import importlib.util
import io
import json
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from datasets.models import Dataset, Export
from workbench.management.commands.seed_demo import DEMO_DATASET
from workbench.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)  # the live server reads what the test writes

SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "train_unet.py"


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("train_unet", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _seed(**options: int) -> tuple[str, str]:
    """The demo; (its dataset's id, the ML engineer's API token)."""
    call_command("seed_demo", stdout=io.StringIO(), model=False, **options)
    return str(Dataset.objects.get(name=DEMO_DATASET).pk), Token.objects.get(user__username="mlengineer").key


def test_the_example_downloads_the_demo_dataset_and_trains_to_dice_0_8(
    script: ModuleType, live_server: Any, tmp_path: Path
) -> None:
    # 256 pixels, so that the loader's resizing to 128 and the Dice at full size are exercised too
    dataset, token = _seed(slices=12, size=256, training_patients=8)
    lines: list[str] = []
    archive_dir = script.fetch_export(live_server.url, token, tmp_path, dataset=dataset, log=lines.append)
    datalist = json.loads((archive_dir / "datalist.json").read_text())
    assert datalist["labels"] == {"0": "background", "1": "Nodule"}
    assert datalist["validation"] and (archive_dir / "workbench_augment.py").exists()

    started = time.monotonic()
    score = script.train(archive_dir, 15, out=tmp_path, log=lines.append)
    print("\n".join(lines), f"\ntraining took {time.monotonic() - started:.0f} s")
    assert score >= 0.8
    assert "Augmentation on the fly: flip, rotate, intensity_shift" in lines
    assert sum("validation Dice" in line for line in lines) == 15
    assert (tmp_path / "unet.pt").exists()


def test_a_download_resumes_where_it_stopped_and_checks_the_bytes(
    script: ModuleType, live_server: Any, tmp_path: Path
) -> None:
    dataset, token = _seed(slices=8, size=48, training_patients=3)
    api = script.Workbench(live_server.url, token)
    version = script.pick_version(api, dataset=dataset)
    job = script.request_export(api, version, log=lambda line: None)
    with default_storage.open(Export.objects.get().archive_path, "rb") as stream:
        whole = stream.read()
    part = tmp_path / f"{job['sha256']}.zip.part"
    part.write_bytes(whole[:1000])  # what an interrupted run left

    archive = script.download(api, job, tmp_path, log=lambda line: None)
    assert archive.read_bytes() == whole and not part.exists()
    ranges = AuditEvent.objects.filter(action="export_downloaded").values_list("details__range", flat=True)
    assert list(ranges) == ["bytes=1000-"]

    archive.unlink()
    part.write_bytes(b"x" * 1000)  # not the archive's first bytes: found out, and fetched again whole
    assert script.download(api, job, tmp_path, log=lambda line: None).read_bytes() == whole

    folder = script.unpack(archive, tmp_path / "unpacked", version=version)
    (folder / "cases.json").write_text("{}")
    with pytest.raises(script.WorkbenchError, match="cases.json does not match"):
        script.verify(folder, version=version)
    with pytest.raises(script.WorkbenchError, match="not the manifest of the version"):
        script.unpack(archive, tmp_path / "again", version="0" * 64)


def test_the_script_exits_with_1_and_says_why(
    script: ModuleType, live_server: Any, tmp_path: Path, capsys: Any
) -> None:
    dataset, token = _seed(slices=8, size=48, training_patients=0)
    args = ["--url", live_server.url, "--out", str(tmp_path)]
    assert script.main([*args, "--dataset", dataset, "--token", "not-a-token"]) == 1
    assert "HTTP 401" in capsys.readouterr().err
    assert script.main([*args, "--dataset", "00000000-0000-0000-0000-000000000000", "--token", token]) == 1
    assert "HTTP 404" in capsys.readouterr().err
