"""A reader decides on a model's proposals in the annotator (issue 11): they are shown as a layer
of their own, one is accepted as it is, one edited with the brush then accepted, one rejected;
after a reload exactly that is there, and the history shows what the reader changed.

Needs the bundle: `make frontend` (or `npm ci && npm run build` in frontend/viewer).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from annotations.geometry import rle_decode, rle_encode
from tests.e2e.test_annotator_task import TOOLBAR_ROWS
from tests.e2e.test_flows import log_in
from tests.e2e.test_viewer import BUNDLE, SIZE, open_viewer, saved
from tests.e2e.test_viewer_editing import _task
from workbench.models import Project

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not BUNDLE.exists(), reason="viewer bundle not built (make frontend)"),
]

SHOTS = Path("/tmp/shots-proposals")  # noqa: S108 - screenshots for a person to look at, never committed
SPACING = [0.7, 0.7]
MODEL_ID = "ab" * 32  # a model version's id is the sha256 of its weights and config
# A pixel of the image on screen, through the camera only (see test_viewer_tools.PIXEL_ON_SCREEN).
PIXEL_ON_SCREEN = """([x, y]) => { const vp = window.workbenchViewer.viewer.viewport;
    const origin = -128 * 0.35;
    return vp.worldToCanvas([origin + 0.7 * x, origin + 0.7 * y, 0]); }"""
# How many pixels of the proposal layer are drawn in the model's colour (#ff4fd8).
MODEL_PIXELS = """() => { const c = document.getElementById('proposal-layer');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 200 && d[i] > 200 && d[i + 1] < 120 && d[i + 2] > 150) n++;
    return n; }"""


def disk(cx: int, cy: int, r: int) -> dict[str, Any]:
    yy, xx = np.mgrid[:SIZE, :SIZE]
    mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    return {"rows": SIZE, "columns": SIZE, "rle": rle_encode(mask)}


@pytest.fixture
def preannotated(project_a: Project, cast: dict[str, Any], run_tasks: Any) -> tuple[Any, dict[str, Any]]:
    """Bob's task on a 4-slice CT, pre-annotated by a model: Nodule masks on slices 1, 2 and 3
    (scores 0.95, 0.85, 0.40) and a Lesion box on slice 1 (0.62)."""
    from annotations.models import Label
    from inference.models import InferenceRun, ModelVersion, Proposal

    task = _task(project_a, cast, run_tasks)
    series = task.series
    model = ModelVersion.objects.create(
        id=MODEL_ID,
        project=project_a,
        kind="segmentation",
        name="Nodule U-Net",
        labels=["Nodule"],
        weights_path="models/none.pt",
        weights_sha256=MODEL_ID,
    )
    run = InferenceRun.objects.create(project=project_a, model=model, series_ids=[str(series.pk)], status="done")
    nodule = Label.objects.get(schema__project=project_a, name="Nodule")
    lesion = Label.objects.get(schema__project=project_a, name="Lesion")
    sop = {i.number: i.sop_uid for i in series.instances.all()}

    def propose(label: Any, number: int, geometry: dict[str, Any], score: float) -> Any:
        return Proposal.objects.create(
            run=run,
            model=model,
            series=series,
            label=label,
            sop_instance_uid=sop[number],
            frame=0,
            kind=label.kind,
            geometry=geometry,
            score=score,
        )

    proposals = {
        "accept": propose(nodule, 1, disk(40, 60, 10), 0.95),
        "edit": propose(nodule, 2, disk(44, 58, 9), 0.85),
        "reject": propose(nodule, 3, disk(48, 56, 8), 0.40),
        "box": propose(lesion, 1, {"x0": 70.0, "y0": 30.0, "x1": 100.0, "y1": 55.0}, 0.62),
    }
    return task, proposals


def row(page: Page, proposal: Any) -> Any:
    return page.locator(f'#proposal-list li[data-proposal-id="{proposal.pk}"]')


def brush_stroke(page: Page, points: list[tuple[float, float]]) -> None:
    box = page.locator("#viewport").bounding_box()
    assert box is not None
    screen = [page.evaluate(PIXEL_ON_SCREEN, [x, y]) for x, y in points]
    page.mouse.move(box["x"] + screen[0][0], box["y"] + screen[0][1])
    page.mouse.down()
    for sx, sy in screen[1:]:
        page.mouse.move(box["x"] + sx, box["y"] + sy, steps=8)
    page.mouse.up()


def test_reader_accepts_edits_and_rejects_proposals(
    page: Page, live_server: Any, preannotated: tuple[Any, dict[str, Any]]
) -> None:
    from annotations.models import Annotation
    from inference.models import ProposalDecision

    task, proposals = preannotated
    SHOTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{task.pk}/")

    # the proposals: listed by label with their score, drawn on their slice in the model's style
    expect(page.locator("#proposals")).to_be_visible()
    expect(page.locator("#proposal-count")).to_have_text("4")
    expect(page.locator("#proposal-list li")).to_have_count(4)
    expect(row(page, proposals["accept"])).to_contain_text("image 1 · 0.95")
    expect(page.locator("#proposals-accept-above")).to_have_text("Accept 2")  # ≥ 0.80
    expect(page.locator("#ann-list li")).to_have_count(0)  # not the reader's labels
    assert page.evaluate(MODEL_PIXELS) > 100
    rows = page.evaluate(TOOLBAR_ROWS)
    assert 1 <= rows <= 2, f"the toolbar takes {rows} rows at 1366x768"
    for selector in ("#viewport", "#submit", "#proposals-accept-above"):
        b = page.locator(selector).bounding_box()
        assert b is not None and b["x"] + b["width"] <= 1366 and b["y"] + b["height"] <= 768, selector
    page.screenshot(path=str(SHOTS / "proposals-1366x768.png"))

    # the layer can be hidden and shown again
    page.uncheck("#proposals-show")
    expect(page.locator("#proposal-layer")).to_be_hidden()
    page.check("#proposals-show")
    expect(page.locator("#proposal-layer")).to_be_visible()

    # 1. accepted as it is: an annotation of the reader's, from the model
    row(page, proposals["accept"]).locator(".accept").click()
    expect(row(page, proposals["accept"])).to_have_count(0)
    expect(page.locator('#ann-list li[data-source="model"]')).to_have_count(1)

    # 2. edited with the brush, then accepted
    row(page, proposals["edit"]).locator(".edit").click()
    expect(row(page, proposals["edit"])).to_have_attribute("data-editing", "true")
    expect(page.locator('button[data-tool="brush"]')).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#ov-slice")).to_have_text("2 / 4")
    expect(row(page, proposals["reject"]).locator(".accept")).to_be_disabled()  # one thing at a time
    brush_stroke(page, [(56, 58), (64, 58), (64, 66)])
    expect(page.locator("#proposal-result")).to_contain_text("px so far")
    page.keyboard.press("Control+z")  # the edit's own steps, not the reader's annotations
    expect(page.locator("#proposal-result")).to_contain_text("+0 / −0 px so far")
    page.keyboard.press("Control+Shift+z")
    expect(page.locator("#proposal-result")).not_to_contain_text("+0 / −0 px")  # beyond the proposal's right edge
    expect(page.locator("#proposal-result")).to_contain_text("px so far")
    page.screenshot(path=str(SHOTS / "proposals-editing-1366x768.png"))
    page.wait_for_timeout(1_000)  # longer than the save debounce
    assert Annotation.objects.filter(assignment=task).count() == 1, "an edit was saved before it was accepted"
    row(page, proposals["edit"]).locator(".accept-edit").click()
    expect(row(page, proposals["edit"])).to_have_count(0)
    expect(page.locator('#ann-list li[data-source="model"]')).to_have_count(2)

    # 3. rejected: it goes
    row(page, proposals["reject"]).locator(".reject").click()
    expect(row(page, proposals["reject"])).to_have_count(0)
    expect(page.locator("#proposal-list li")).to_have_count(1)  # the box is still to decide
    saved(page)

    made = {a.proposal: a for a in Annotation.objects.filter(assignment=task, deleted=False)}
    assert set(made) == {proposals["accept"].pk, proposals["edit"].pk}
    assert all(a.source == "model" and a.model_version == MODEL_ID for a in made.values())
    assert made[proposals["accept"].pk].geometry["rle"] == proposals["accept"].geometry["rle"]
    edited = rle_decode(made[proposals["edit"].pk].geometry["rle"], SIZE, SIZE)
    proposed = rle_decode(proposals["edit"].geometry["rle"], SIZE, SIZE)
    assert (edited & ~proposed).sum() > 20 and not (proposed & ~edited).any()  # added, nothing lost
    decisions = {d.proposal_id: d for d in ProposalDecision.objects.filter(assignment=task)}
    assert {k: decisions[p.pk].status for k, p in proposals.items() if p.pk in decisions} == {
        "accept": "accepted",
        "edit": "accepted",
        "reject": "rejected",
    }
    assert decisions[proposals["edit"].pk].provenance["edited"] is True
    assert decisions[proposals["accept"].pk].provenance["edited"] is False

    # after a reload: exactly that
    page.set_viewport_size({"width": 1920, "height": 1080})
    open_viewer(page, f"{live_server.url}/assignments/{task.pk}/")
    expect(page.locator('#ann-list li[data-source="model"]')).to_have_count(2)
    expect(page.locator("#ann-list li")).to_have_count(2)
    expect(page.locator("#proposal-list li")).to_have_count(1)
    for key in ("accept", "edit", "reject"):
        expect(row(page, proposals[key])).to_have_count(0)
    expect(row(page, proposals["box"])).to_be_visible()

    # the history shows the provenance of the edited one
    edited_id = made[proposals["edit"].pk].pk
    page.locator(f'#ann-list li[data-ann-id="{edited_id}"] .history').click()
    provenance = page.locator("#history .provenance")
    expect(provenance).to_be_visible()
    expect(provenance).to_contain_text(f"From model {MODEL_ID[:8]} · edited")
    expect(provenance).to_contain_text("Dice")
    expect(provenance).to_contain_text("to accept")
    expect(provenance).to_contain_text("/ −0 px")
    page.screenshot(path=str(SHOTS / "proposals-history-1920x1080.png"))
    page.locator(f'#ann-list li[data-ann-id="{made[proposals["accept"].pk].pk}"] .history').click()
    expect(provenance).to_contain_text("· unchanged")
    expect(provenance).to_contain_text("+0 / −0 px")
    assert page.evaluate(TOOLBAR_ROWS) == 1


def test_a_locked_task_shows_proposals_without_decisions(
    page: Page, live_server: Any, cast: dict[str, Any], preannotated: tuple[Any, dict[str, Any]]
) -> None:
    from annotations import services

    task, proposals = preannotated
    services.assignment_submit(assignment=task, user=cast["bob"])
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{task.pk}/")
    expect(page.locator("#proposal-list li")).to_have_count(4)
    for cls in ("accept", "edit", "reject"):
        expect(row(page, proposals["accept"]).locator(f".{cls}")).to_be_disabled()
    expect(page.locator("#proposals-accept-above")).to_be_disabled()
    expect(page.locator("#proposals")).to_have_attribute("data-locked", "true")
    assert page.evaluate(MODEL_PIXELS) > 100  # still shown, to read


def test_accept_all_at_or_above_a_score(page: Page, live_server: Any, preannotated: tuple[Any, dict[str, Any]]) -> None:
    from annotations.models import Annotation

    task, proposals = preannotated
    log_in(page, live_server.url, "bob")
    open_viewer(page, f"{live_server.url}/assignments/{task.pk}/")
    page.fill("#proposal-threshold", "0.6")
    expect(page.locator("#proposals-accept-above")).to_have_text("Accept 3")
    page.fill("#proposal-threshold", "0.85")
    expect(page.locator("#proposals-accept-above")).to_have_text("Accept 2")  # 0.85 itself is in
    page.click("#proposals-accept-above")
    expect(page.locator("#proposal-result")).to_contain_text("Accepted 2 proposals scored 0.85 or more")
    expect(page.locator('#ann-list li[data-source="model"]')).to_have_count(2)
    expect(page.locator("#proposal-list li")).to_have_count(2)
    expect(row(page, proposals["reject"])).to_be_visible()
    expect(row(page, proposals["box"])).to_be_visible()
    made = set(Annotation.objects.filter(assignment=task, source="model").values_list("proposal", flat=True))
    assert made == {proposals["accept"].pk, proposals["edit"].pk}
