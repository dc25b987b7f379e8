"""One project with an object of every kind a URL names, its cast, an outsider and a former member.

The former member was a radiologist and the reader of their own assignment with an annotation
on it (the objects they reach for in the matrix); their membership is deleted before any request.
The demoted member read the same way, and is now the project's compliance officer only.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from annotations import services as annotation_services
from anonymizer import services as ingest_services
from anonymizer import uploads, vocabulary
from anonymizer.deid.tests.factory import make_us
from anonymizer.models import IngestItem, ItemStatus
from datasets import services as dataset_services
from inference.models import InferenceRun, ModelVersion, Proposal
from tests.annotation_factory import make_schema
from tests.helpers import CT_SMALL, ingest
from tests.security.access_rules import ROLES, Ctx
from workbench.demo import to_bytes
from workbench.models import Membership, Project, Series

# Values for URL kwargs that name no object of ours (Django's admin).
ADMIN_KWARGS = {"object_id": "1", "content_type_id": "1", "app_label": "workbench", "id": "1", "url": "nothing/"}


def build_world(run_tasks: Any, monkeypatch: Any) -> tuple[dict[str, Any], dict[str, Ctx]]:
    """(users by kind, URL context by kind). Kinds: each role, "outsider", "former", "demoted"."""
    project = Project.objects.create(name="Matrix", slug="matrix")
    elsewhere = Project.objects.create(name="Elsewhere", slug="elsewhere")
    make = get_user_model().objects.create_user
    users = {role: make(username=role) for role in ROLES}
    for role, user in users.items():
        Membership.objects.create(project=project, user=user, role=role)
    users["outsider"] = make(username="outsider")
    Membership.objects.create(project=elsewhere, user=users["outsider"], role="admin")
    users["former"] = make(username="former")
    former_membership = Membership.objects.create(project=project, user=users["former"], role="radiologist")
    users["demoted"] = make(username="demoted")
    demoted_membership = Membership.objects.create(project=project, user=users["demoted"], role="radiologist")
    for user in users.values():
        Token.objects.create(user=user)

    with run_tasks():
        batch = ingest(project, {"ct.dcm": CT_SMALL.read_bytes()}, user=users["admin"])
    monkeypatch.setattr(ingest_services, "_detector", lambda: None)  # the ultrasound waits in quarantine
    with run_tasks():
        ingest(project, {"us.dcm": to_bytes(make_us(text="PLANTED NAME"))}, user=users["admin"])
    item = IngestItem.objects.get(status=ItemStatus.QUARANTINED)
    series = Series.objects.select_related("study__patient").get(study__project=project)
    instance = series.instances.get()

    schema = make_schema(project)
    label = schema.labels.get(name="Lesion")
    mine, theirs, demoted = annotation_services.assignment_create(
        series=series, readers=[users["radiologist"], users["former"], users["demoted"]], user=users["admin"]
    )
    box = {"x0": 1, "y0": 1, "x1": 3, "y1": 2}
    annotations = {}
    for assignment in (mine, theirs, demoted):
        annotations[assignment.pk], _ = annotation_services.annotation_create(
            assignment=assignment, user=assignment.reader, label=label, sop_instance_uid=instance.sop_uid, geometry=box
        )
    term = vocabulary.vocabulary_term_add(project=project, user=users["compliance"], term="Zebedee").term

    ml = users["ml_engineer"]
    dataset = dataset_services.dataset_create(
        project=project, user=ml, name="Matrix set", selection={"statuses": ["in_progress"]}
    )
    version, _ = dataset_services.version_freeze(dataset=dataset, user=ml)
    with run_tasks():
        export, _ = dataset_services.export_request(version=version, user=ml, export_format="nifti")

    model = ModelVersion.objects.create(
        id="f" * 64,
        project=project,
        kind="segmentation",
        name="matrix model",
        labels=["Lesion"],
        input_spec={"modality": series.modality},
        weights_path="unused",
        weights_sha256="0" * 64,
    )
    run = InferenceRun.objects.create(project=project, model=model, series_ids=[str(series.pk)], status="done")
    proposal = Proposal.objects.create(
        run=run,
        model=model,
        series=series,
        label=label,
        sop_instance_uid=instance.sop_uid,
        kind=label.kind,
        geometry={"x0": 2, "y0": 2, "x1": 4, "y1": 3},
        score=0.9,
    )

    upload = uploads.upload_create(project=project, user=users["admin"], length=10, name="study.zip", batch=None)

    former_membership.delete()
    demoted_membership.role = "compliance"
    demoted_membership.save()
    common = {
        "project_id": project.pk,
        "study_id": series.study.pk,
        "series_id": series.pk,
        "instance_id": instance.pk,
        "batch_id": batch.pk,
        "item_id": item.pk,
        "upload_id": upload.pk,
        "dataset_id": dataset.pk,
        "version_id": version.pk,
        "export_id": export.pk,
        "term": term,
        "model_id": model.pk,
        "run_id": run.pk,
        "proposal_id": proposal.pk,
        "label_id": str(label.pk),
        "sop_uid": instance.sop_uid,
        "series_uid": series.series_uid,
        "study_uid": series.study.study_uid,
        "pseudo_id": series.study.patient.pseudo_id,
        **ADMIN_KWARGS,
    }
    reader = {**common, "assignment_id": mine.pk, "annotation_id": annotations[mine.pk].pk}
    ctx = {kind: reader for kind in users}
    ctx["former"] = {**common, "assignment_id": theirs.pk, "annotation_id": annotations[theirs.pk].pk}
    ctx["demoted"] = {**common, "assignment_id": demoted.pk, "annotation_id": annotations[demoted.pk].pk}
    ctx["anonymous"] = reader
    return users, ctx
