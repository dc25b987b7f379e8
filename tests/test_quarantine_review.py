"""The quarantine as a compliance officer uses it: reasons in words, original names, the
redaction preview and re-processing with changed options, each restricted and audited."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image

from anonymizer import review, services
from anonymizer.deid.tests.factory import make_us
from anonymizer.intake import Incoming
from anonymizer.models import IngestItem, ItemStatus, Source
from anonymizer.preview import GAP, HEADER
from anonymizer.reasons import reason_text
from workbench.demo import to_bytes
from workbench.models import AuditEvent, Instance

NAME = "scan-of-PLANTED-PERSON.dcm"
TEXT_BOX = (30, 30, 320, 80)  # where make_us draws its text, with a margin


class BoxDetector:
    """Finds text where make_us draws it, while something bright is still there."""

    def detect(self, image: np.ndarray) -> list[tuple[int, int, int, int]]:
        # The cleaner hands over scaled, padded renderings: box the bright glyphs it is shown.
        bright = np.asarray(image).max(axis=-1) > 200 if np.asarray(image).ndim == 3 else np.asarray(image) > 200
        rows, cols = np.nonzero(bright)
        if not len(rows):
            return []
        return [(int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1)]


@pytest.fixture
def held(project_a, cast, run_tasks, monkeypatch, caplog) -> IngestItem:  # type: ignore[no-untyped-def]
    """An ultrasound with burned-in text, quarantined because no text detector is installed."""
    monkeypatch.setattr(services, "_detector", lambda: None)
    with caplog.at_level(logging.DEBUG), run_tasks():
        batch = services.batch_create(project=project_a, source=Source.UPLOAD, user=cast["alice"])
        services.batch_add(batch=batch, incoming=[Incoming(NAME, to_bytes(make_us(text="HARRIS MRN0041177")))])
    assert "PLANTED" not in caplog.text  # the name is never logged
    item = IngestItem.objects.get()
    assert (item.status, item.reason_code) == (ItemStatus.QUARANTINED, "no_text_detector")
    assert item.pixel_flagged
    return item


def _client(cast: dict[str, Any], name: str) -> Client:
    client = Client()
    client.force_login(cast[name])
    return client


def _preview_url(item: IngestItem) -> str:
    return reverse("quarantine-preview", args=[item.pk])


@pytest.mark.django_db
def test_page_shows_the_reason_in_words_and_the_name_to_compliance_only(held, cast, project_a) -> None:
    url = reverse("quarantine", args=[project_a.pk])
    carol = _client(cast, "carol").get(url).content.decode()
    assert reason_text("no_text_detector") in carol
    assert NAME in carol
    assert _preview_url(held) in carol
    admin = _client(cast, "alice").get(url).content.decode()  # may see the quarantine, not the names
    assert reason_text("no_text_detector") in admin
    assert NAME not in admin and "PLANTED" not in admin
    assert _preview_url(held) not in admin
    assert NAME.encode() not in bytes(held.name_encrypted)  # stored encrypted only


@pytest.mark.django_db
def test_api_lists_reason_words_and_the_name_to_compliance_only(held, api_as, project_a) -> None:
    url = reverse("api-quarantine", args=[project_a.pk])
    row = api_as("carol").get(url).json()["results"][0]
    assert row["reason_text"] == reason_text("no_text_detector")
    assert row["original_name"] == NAME
    assert row["preview"] == reverse("api-quarantine-preview", args=[held.pk])
    admin = api_as("alice").get(url).json()["results"][0]
    assert admin["original_name"] is None and admin["preview"] is None
    assert "PLANTED" not in str(admin)


@pytest.mark.django_db
def test_preview_shows_before_and_after_to_compliance_audited_and_not_cached(held, cast, monkeypatch) -> None:
    monkeypatch.setattr(services, "_detector", lambda: BoxDetector())
    response = _client(cast, "carol").get(_preview_url(held))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert "no-store" in response["Cache-Control"]
    image = np.asarray(Image.open(io.BytesIO(response.content)).convert("L"))
    half = (image.shape[1] - GAP) // 2
    x0, y0, x1, y1 = TEXT_BOX
    inside = (slice(HEADER + y0 + 5, HEADER + y1 - 5), slice(x0 + 5, x1 - 5))
    before, after = image[:, :half], image[:, half + GAP :]
    assert before[inside].max() > 200  # the burned-in text, as received
    assert (after[inside] > 200).sum() == 0  # blacked out after cleaning (the box outline is grey)
    event = AuditEvent.objects.get(action="quarantine_preview")
    assert event.actor_name == "carol" and event.object_id == str(held.pk)
    assert set(event.details) == {"frame", "regions"} and event.details["regions"] >= 1  # counts only


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "status"), [("alice", 403), ("bob", 403), ("dave", 403), ("charlie", 404)])
def test_preview_is_refused_to_everyone_else(held, cast, api_as, monkeypatch, name: str, status: int) -> None:
    monkeypatch.setattr(services, "_detector", lambda: BoxDetector())
    assert _client(cast, name).get(_preview_url(held)).status_code == status
    assert api_as(name).get(reverse("api-quarantine-preview", args=[held.pk])).status_code == status
    assert not AuditEvent.objects.filter(action="quarantine_preview").exists()


@pytest.mark.django_db
def test_api_preview_and_an_item_without_flagged_pixels(held, api_as, monkeypatch) -> None:
    monkeypatch.setattr(services, "_detector", lambda: BoxDetector())
    response = api_as("carol").get(reverse("api-quarantine-preview", args=[held.pk]))
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    IngestItem.objects.filter(pk=held.pk).update(pixel_flagged=False)
    refused = api_as("carol").get(reverse("api-quarantine-preview", args=[held.pk]))
    assert refused.status_code == 409 and "not flagged" in refused.content.decode()
    assert refused.json()["error"] == "preview_unavailable"  # the API's JSON error shape
    assert AuditEvent.objects.filter(action="quarantine_preview").count() == 1


@pytest.mark.django_db
def test_reprocess_with_changed_options_through_the_page(held, cast, run_tasks) -> None:
    """Pixel cleaning off for this one file (the officer looked at the preview): it is stored."""
    form = {"with_options": "1"}
    form |= {name: "on" for name, value in services.item_options(held).to_dict().items() if value is True}
    del form["clean_pixel_data"]
    with run_tasks():
        response = _client(cast, "carol").post(reverse("quarantine-reprocess", args=[held.pk]), form)
    assert response.status_code == 302
    held.refresh_from_db()
    assert held.status == ItemStatus.DONE and held.options_override == {"clean_pixel_data": False}
    assert Instance.objects.filter(pk=held.instance_id, pixel_cleaned=False).exists()
    event = AuditEvent.objects.get(action="quarantine_reprocess")
    assert event.actor_name == "carol"
    assert event.details["changed"] == ["clean_pixel_data"] and event.details["overrides"] == ["clean_pixel_data"]
    assert "HARRIS" not in str(event.details)


@pytest.mark.django_db
def test_reprocess_options_over_the_api_are_validated(held, api_as, run_tasks, monkeypatch) -> None:
    url = reverse("api-quarantine-reprocess", args=[held.pk])
    carol = api_as("carol")
    assert carol.post(url, {"options": {"no_such_option": True}}, format="json").status_code == 400
    assert carol.post(url, {"options": {"safe_private_allowlist": True}}, format="json").status_code == 400
    assert carol.post(url, {"options": {"clean_pixel_data": "maybe"}}, format="json").status_code == 400
    held.refresh_from_db()
    assert held.status == ItemStatus.QUARANTINED and held.options_override == {}
    assert not AuditEvent.objects.filter(action="quarantine_reprocess").exists()
    monkeypatch.setattr(services, "_detector", lambda: BoxDetector())
    with run_tasks():
        response = carol.post(url, {"options": {"ocr_all_images": True}}, format="json")
    assert response.status_code == 200
    held.refresh_from_db()
    assert held.status == ItemStatus.DONE and held.options_override == {"ocr_all_images": True}
    assert Instance.objects.get(pk=held.instance_id).pixel_cleaned


@pytest.mark.django_db
def test_reprocess_without_options_keeps_earlier_overrides(held, cast) -> None:
    IngestItem.objects.filter(pk=held.pk).update(options_override={"retain_device_identity": True})
    held.refresh_from_db()
    review.item_reprocess(item=held, user=cast["carol"])  # not run: only re-queued
    held.refresh_from_db()
    assert held.status == ItemStatus.RECEIVED and held.options_override == {"retain_device_identity": True}
    assert AuditEvent.objects.get(action="quarantine_reprocess").details["changed"] == []


def test_preview_of_a_palette_image_shows_the_colours_a_viewer_shows() -> None:
    from pydicom.data import get_testdata_file

    from anonymizer.deid import DeidOptions, PseudonymKeys
    from anonymizer.preview import redaction_preview

    class NoText:
        def detect(self, image: np.ndarray) -> list[tuple[int, int, int, int]]:
            return []  # no outline drawn: any colour comes from the frame itself

    raw = Path(get_testdata_file("examples_palette.dcm")).read_bytes()  # type: ignore[arg-type]
    preview = redaction_preview(raw, options=DeidOptions(), keys=PseudonymKeys(secret=b"k" * 32), detector=NoText())
    assert preview.regions == 0
    image = np.asarray(Image.open(io.BytesIO(preview.png)).convert("RGB")).astype(int)
    half = (image.shape[1] - GAP) // 2
    before = image[HEADER:, :half]
    assert (np.abs(before[..., 0] - before[..., 2]) > 30).any()  # colour, not the grey palette indices
