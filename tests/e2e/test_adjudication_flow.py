"""Two readers disagree, the series goes to adjudication, the adjudicator edits the consensus in
the annotator and picks a final read with a reason, and a dataset frozen afterwards holds that
read. Screenshots of the adjudication page go to $WB_SCREENSHOTS when set."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

from conftest import PASSWORD
from tests.e2e.test_flows import log_in
from tests.e2e.test_reading_pages import _look
from tests.e2e.test_viewer import ct_series_files, drag, open_viewer, saved
from tests.helpers import ingest
from workbench.models import Membership, Project, Role, Series

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def disagreement(project_a: Project, cast: dict[str, Any], run_tasks: Any) -> dict[str, Any]:
    from annotations import schemas, services

    fred = get_user_model().objects.create_user(username="fred", password=PASSWORD)
    Membership.objects.create(project=project_a, user=fred, role=Role.RADIOLOGIST)
    with run_tasks():
        ingest(project_a, ct_series_files(), user=cast["alice"])
    schema = schemas.label_schema_create(project=project_a, labels=schemas.DEFAULT_CHEST_LABELS, user=cast["alice"])
    box_label = next(label for label in schema.labels.all() if label.kind == "box")
    series = Series.objects.get(study__project=project_a)
    first = series.instances.order_by("number").first()
    assert first is not None
    bob_read, fred_read = services.assignment_create(series=series, readers=[cast["bob"], fred], user=cast["alice"])
    for read, box in ((bob_read, (4, 4, 20, 20)), (fred_read, (40, 40, 60, 60))):
        services.annotation_create(
            assignment=read,
            user=read.reader,
            label=box_label,
            sop_instance_uid=first.sop_uid,
            geometry={"x0": box[0], "y0": box[1], "x1": box[2], "y1": box[3]},
        )
    with run_tasks():
        for read in (bob_read, fred_read):
            services.assignment_submit(assignment=read, user=read.reader)
    return {"series": series, "bob": bob_read, "fred": fred_read, "label": box_label}


def test_disagreement_is_adjudicated_and_the_dataset_holds_the_final_read(
    page: Page, live_server: Any, project_a: Project, cast: dict[str, Any], disagreement: dict[str, Any]
) -> None:
    from annotations.models import Annotation, AssignmentKind, ConsensusState, SeriesConsensus
    from datasets import services as dataset_services
    from datasets.manifest import manifest_load

    series = disagreement["series"]
    row = SeriesConsensus.objects.get(series=series)
    assert row.state == ConsensusState.NEEDS_ADJUDICATION  # two boxes far apart: no agreement

    log_in(page, live_server.url, "erin")
    page.goto(f"{live_server.url}/projects/{project_a.pk}/adjudication/")
    listed = page.locator(f"tr[data-series='{series.pk}']")
    expect(listed).to_have_attribute("data-state", "needs_adjudication")
    _look(page, "adjudication-list")
    listed.locator("a").first.click()
    expect(page.locator("figure[data-read]")).to_have_count(3)  # bob, fred, the consensus
    expect(page.locator("figure.heat img")).to_be_visible()
    _look(page, "adjudication-series")

    # the consensus opens in the annotator, editable by the adjudicator, with no Submit/Accept
    consensus = row.assignment
    assert consensus.kind == AssignmentKind.CONSENSUS
    open_viewer(page, f"{live_server.url}/assignments/{consensus.pk}/")
    expect(page.locator("#viewer-message")).to_have_attribute("data-consensus", "editing")
    expect(page.locator("#submit")).to_be_hidden()
    expect(page.locator("#review")).to_be_hidden()
    before = Annotation.objects.filter(assignment=consensus, deleted=False).count()
    page.click('[data-tool="box"]')
    drag(page, [(0.3, 0.3), (0.45, 0.45)])
    saved(page)
    assert Annotation.objects.filter(assignment=consensus, deleted=False).count() == before + 1

    # the adjudicator picks fred's read, with a reason
    page.goto(f"{live_server.url}/projects/{project_a.pk}/adjudication/{series.pk}/")
    page.check(f"input[name=final][value='{disagreement['fred'].pk}']")
    page.fill("textarea[name=reason]", "fred's box covers the lesion")
    page.click("form.decide button[type=submit]")
    expect(page.locator(".consensus-state")).to_have_attribute("data-state", "adjudicated")
    row.refresh_from_db()
    assert row.state == ConsensusState.ADJUDICATED and row.source_read_id == disagreement["fred"].pk

    dataset = dataset_services.dataset_create(
        project=project_a, user=cast["dave"], name="Final", selection={"statuses": ["submitted", "accepted"]}
    )
    version, _ = dataset_services.version_freeze(dataset=dataset, user=cast["dave"])
    manifest = manifest_load(version.pk, version.manifest_path)
    assert manifest["label_source"]["mode"] == "consensus"
    (sample,) = manifest["samples"]
    assert sample["label_basis"] == "consensus"
    assert [a["geometry"] for a in sample["annotations"]] == [{"x0": 40.0, "y0": 40.0, "x1": 60.0, "y1": 60.0}]
