"""Who may reach each URL pattern: the access rule table the matrix test checks every pattern against.

Every pattern the URL resolver knows must have an entry here (``unclassified`` finds those that
do not, and the matrix test fails listing them): adding a view means deciding who may use it.
Keys are ``namespace:name``; a pattern without a name is keyed by its full route. A key ending in
``:*`` covers a whole namespace (Django's admin, whose every view makes the same staff check).

An entry maps HTTP methods to a ``Rule``; a single ``Rule`` means GET only.
Roles: R radiologist (the assigned reader of the world's assignment), V reviewer, C compliance
officer, M ML engineer, A project admin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.urls import URLPattern, URLResolver

R, V, C, M, A = "radiologist", "reviewer", "compliance", "ml_engineer", "admin"
ROLES = (R, V, C, M, A)
ANY = frozenset(ROLES)
INGEST = frozenset({A, C})
COMPLIANCE = frozenset({C, A})
VAULT = frozenset({C})
DATASET_VIEW = frozenset({M, A, V, C})
DATASET_EDIT = frozenset({M, A})
REVIEW = frozenset({V, A})
RUN = frozenset({M, A})
# An assignment and what hangs from it is its reader's and the reviewers': other members are
# blinded (404, as if it did not exist), see annotations/access.py.
ASSIGNMENT_SEE = frozenset({R, V, A})
ASSIGNMENT_BLIND = frozenset({C, M})

Ctx = dict[str, Any]


@dataclass(frozen=True)
class Rule:
    """Who passes the access checks of one method of one pattern.

    kind: "project" (scoped to the world's project: outsiders and former members get 404,
    ``allowed`` roles pass, ``hidden`` roles get 404, other roles 403); "user" (any logged-in
    user, no project in the URL: it answers only with the user's own data); "public" (anyone,
    anonymous included); "admin_site" (Django's admin: no member is staff, every one is sent
    to the admin login).
    """

    kind: str = "project"
    allowed: frozenset[str] = frozenset()
    hidden: frozenset[str] = frozenset()
    body: Callable[[Ctx], dict[str, Any]] | None = None
    query: Callable[[Ctx], str] | None = None


def member(allowed: frozenset[str], hidden: frozenset[str] = frozenset(), **kw: Any) -> Rule:
    return Rule("project", allowed, hidden, **kw)


USER = Rule("user")
PUBLIC = Rule("public")
ADMIN_SITE = Rule("admin_site")


def _annotation_body(ctx: Ctx) -> dict[str, Any]:
    return {
        "assignment": str(ctx["assignment_id"]),
        "label": ctx["label_id"],
        "sop_instance_uid": ctx["sop_uid"],
        "frame": 0,
        "geometry": {"x0": 1, "y0": 1, "x1": 3, "y1": 2},
        "attributes": {},
    }


def _wado(ctx: Ctx) -> str:
    return f"requestType=WADO&studyUID={ctx['study_uid']}&seriesUID={ctx['series_uid']}&objectUID={ctx['sop_uid']}"


RULES: dict[str, Rule | dict[str, Rule]] = {
    # --- Django's admin: only for a superuser made with createsuperuser ---------------------------
    "admin:*": ADMIN_SITE,
    "admin:login": PUBLIC,
    "admin:logout": {"POST": PUBLIC},
    # --- catalog ----------------------------------------------------------------------------------
    "api-projects": USER,
    "api-project-detail": member(ANY),
    "api-studies": member(ANY),
    "api-study-detail": member(ANY),
    "api-series-detail": member(ANY),
    "api-series-viewer": member(ANY),
    "api-instance-detail": member(ANY),
    "api-instance-file": member(ANY),
    "api-instance-render": member(ANY),
    "api-instance-tags": member(ANY),
    "wado": member(ANY, query=_wado),
    # --- ingest, quarantine, vault, audit, reports, vocabulary -------------------------------------
    "api-batches": {"GET": member(INGEST), "POST": member(INGEST)},
    # Resumable (tus) uploads: an ingest role of the upload's project.
    "api-uploads": {"POST": member(INGEST), "OPTIONS": member(INGEST)},
    "api-upload": {"HEAD": member(INGEST), "PATCH": member(INGEST), "DELETE": member(INGEST)},
    "api-batch-detail": member(INGEST),
    "api-quarantine": member(COMPLIANCE),
    "api-quarantine-reprocess": {"POST": member(VAULT)},
    "api-quarantine-preview": member(VAULT),
    "api-quarantine-discard": {"POST": member(VAULT)},
    "api-vault-lookup": {"POST": member(VAULT, body=lambda ctx: {"pseudonym": ctx["pseudo_id"], "reason": "audit"})},
    "api-audit": member(COMPLIANCE),
    "api-deid-report": member(COMPLIANCE),
    "api-study-deid-report": member(COMPLIANCE),
    "api-vocabulary": {"GET": member(COMPLIANCE), "POST": member(VAULT, body=lambda ctx: {"term": "Ozymandias"})},
    "api-vocabulary-term": {"DELETE": member(VAULT)},
    # --- labels, assignments, annotations ----------------------------------------------------------
    "api-label-schema": {"GET": member(ANY), "POST": member(frozenset({A}))},
    "api-label-schema-versions": member(ANY),
    "api-assignments": {
        "GET": member(ANY),
        "POST": member(frozenset({A}), body=lambda ctx: {"series": str(ctx["series_id"]), "readers": [R]}),
    },
    "api-agreement": member(REVIEW),
    "api-adjudication": member(REVIEW),
    "api-active-learning": member(frozenset({V, M, A})),
    "api-active-learning-rank": {"POST": member(frozenset({M, A}))},
    "api-triage": {"POST": member(frozenset({M, A}))},
    # a read's triage score and heat map are the read's, as its proposals are
    "api-assignment-triage": member(ASSIGNMENT_SEE, ASSIGNMENT_BLIND),
    "api-active-learning-fill": {"POST": member(frozenset({A}), body=lambda ctx: {"readers": [R], "count": 1})},
    "api-active-learning-next": {"POST": member(frozenset({R, V, M, A}))},
    "api-consensus-settings": {
        "GET": member(REVIEW),
        "PUT": member(
            frozenset({A}),
            body=lambda ctx: {"agreement_threshold": 0.7, "auto_accept": False, "surface_tolerance_mm": 2.0},
        ),
    },
    "api-retraining": {
        "GET": member(RUN),
        "PUT": member(RUN, body=lambda ctx: {"enabled": False, "after_labels": 50}),
    },
    "api-consensus": member(REVIEW),
    # nothing to decide in the world (its reads are open): 409 for those who pass
    "api-consensus-decide": {"POST": member(REVIEW, body=lambda ctx: {"source": "consensus", "reason": "why"})},
    "api-assignments-mine": USER,
    "api-assignment-detail": {
        "GET": member(ASSIGNMENT_SEE, ASSIGNMENT_BLIND),
        # only a project admin sets priority; a reviewer sees the read but may not reorder work
        "PATCH": member(frozenset({A}), ASSIGNMENT_BLIND, body=lambda ctx: {"priority": "urgent"}),
    },
    # a reviewer sees the read but only its reader hands it in; the reader does not review it
    "api-assignment-submit": {"POST": member(frozenset({R}), ASSIGNMENT_BLIND)},
    "api-assignment-accept": {"POST": member(REVIEW, ASSIGNMENT_BLIND)},
    "api-assignment-return": {"POST": member(REVIEW, ASSIGNMENT_BLIND, body=lambda ctx: {"comment": "again"})},
    "api-annotations": {
        "GET": USER,
        # an admin sees a reader's annotations but only the reader and reviewers edit them
        "POST": member(frozenset({R, V}), ASSIGNMENT_BLIND, body=_annotation_body),
    },
    "api-annotation-detail": {
        "GET": member(ASSIGNMENT_SEE, ASSIGNMENT_BLIND),
        "PATCH": member(frozenset({R, V}), ASSIGNMENT_BLIND, body=lambda ctx: {"revision": 1, "attributes": {}}),
        "DELETE": member(frozenset({R, V}), ASSIGNMENT_BLIND, query=lambda ctx: "revision=1"),
    },
    "api-annotation-history": member(ASSIGNMENT_SEE, ASSIGNMENT_BLIND),
    # --- pre-annotation: admins and ML engineers run models; a read's proposals are the read's ------
    "api-inference-runs": {
        "GET": member(RUN),
        "POST": member(RUN, body=lambda ctx: {"model": ctx["model_id"], "series": [str(ctx["series_id"])]}),
    },
    "api-inference-run-detail": member(RUN),
    "api-proposals": member(ASSIGNMENT_SEE, ASSIGNMENT_BLIND),
    # an admin sees a read's proposals but, as for its annotations, only the reader and reviewers decide
    "api-proposal-accept": {"POST": member(frozenset({R, V}), ASSIGNMENT_BLIND, body=lambda ctx: {})},
    "api-proposal-reject": {"POST": member(frozenset({R, V}), ASSIGNMENT_BLIND)},
    "api-proposals-accept-above": {
        "POST": member(frozenset({R, V}), ASSIGNMENT_BLIND, body=lambda ctx: {"score": 0.5})
    },
    # the segmentation tools answer whoever may write the assignment's annotations
    "api-tool-grow-from-seeds": {
        "POST": member(
            frozenset({R, V}),
            ASSIGNMENT_BLIND,
            body=lambda ctx: {"sop_instance_uid": ctx["sop_uid"], "inside": [[2, 2]]},
        )
    },
    "api-tool-grow-from-seeds-3d": {
        "POST": member(
            frozenset({R, V}),
            ASSIGNMENT_BLIND,
            body=lambda ctx: {"sop_instance_uid": ctx["sop_uid"], "inside": [[2, 2]]},
        )
    },
    "api-tool-fill-between": {
        "POST": member(frozenset({R, V}), ASSIGNMENT_BLIND, body=lambda ctx: {"label": ctx["label_id"]})
    },
    "api-tool-propagate": {
        "POST": member(
            frozenset({R, V}),
            ASSIGNMENT_BLIND,
            body=lambda ctx: {"sop_instance_uid": ctx["sop_uid"], "label": ctx["label_id"], "direction": "next"},
        )
    },
    "api-tool-threshold-brush": {
        "POST": member(
            frozenset({R, V}),
            ASSIGNMENT_BLIND,
            body=lambda ctx: {
                "sop_instance_uid": ctx["sop_uid"],
                "points": [[2, 2]],
                "radius_mm": 3,
                "low": 0,
                "high": 1,
            },
        )
    },
    "api-tool-threshold-brush-3d": {
        "POST": member(
            frozenset({R, V}),
            ASSIGNMENT_BLIND,
            body=lambda ctx: {
                "sop_instance_uid": ctx["sop_uid"],
                "points": [[2, 2]],
                "radius_mm": 3,
                "low": 0,
                "high": 1,
            },
        )
    },
    # --- datasets and exports ----------------------------------------------------------------------
    "api-datasets": {"GET": member(DATASET_VIEW), "POST": member(DATASET_EDIT)},
    "api-dataset-detail": member(DATASET_VIEW),
    "api-dataset-versions": {"GET": member(DATASET_VIEW), "POST": member(DATASET_EDIT)},
    "api-version-detail": member(DATASET_VIEW),
    "api-version-manifest": member(DATASET_VIEW),
    "api-version-compare": member(DATASET_VIEW, query=lambda ctx: f"with={ctx['version_id']}"),
    "api-version-exports": {
        "GET": member(DATASET_VIEW),
        "POST": member(DATASET_EDIT, body=lambda ctx: {"format": "nifti"}),
    },
    "api-export-detail": member(DATASET_EDIT),
    "api-export-download": member(DATASET_EDIT),
    # --- models and training (inference.api_models) -------------------------------------------------
    "api-models": member(ANY),
    "api-model-import": {"POST": member(DATASET_EDIT)},
    "api-model-detail": member(ANY),
    "api-training-jobs": {
        "GET": member(ANY),
        "POST": member(DATASET_EDIT, body=lambda ctx: {"dataset_version": ctx["version_id"], "labels": ["Lesion"]}),
    },
    "api-training-job-detail": member(ANY),
    "api-training-job-cancel": {"POST": member(DATASET_EDIT)},
    # --- API documentation: the schema names no data, so it is public as drf-spectacular serves it ---
    "api-schema": PUBLIC,
    "api-docs": PUBLIC,
    "api-redoc": PUBLIC,
    # --- pages ---------------------------------------------------------------------------------------
    "login": PUBLIC,
    "logout": {"POST": PUBLIC},
    "home": USER,
    "worklist": USER,
    "next-case": {"POST": member(frozenset({R, V, M, A}))},
    "project": member(ANY),
    "upload": member(INGEST),
    "batches": member(COMPLIANCE),
    "batch": member(COMPLIANCE),
    "quarantine": member(COMPLIANCE),
    "quarantine-preview": member(VAULT),
    "quarantine-reprocess": {"POST": member(VAULT)},
    "quarantine-discard": {"POST": member(VAULT)},
    "audit": member(COMPLIANCE),
    "deid-report": member(COMPLIANCE),
    "deid-report-download": member(COMPLIANCE),
    "study-deid-report": member(COMPLIANCE),
    "vault": member(VAULT),
    "vocabulary": {"GET": member(COMPLIANCE), "POST": member(VAULT, body=lambda ctx: {"term": "Ozymandias"})},
    "vocabulary-remove": {"POST": member(VAULT, body=lambda ctx: {"term": ctx["term"]})},
    "deid-settings": {"GET": member(frozenset({A})), "POST": member(frozenset({A}))},
    "assignments": {"GET": member(frozenset({A})), "POST": member(frozenset({A}))},
    "review": {"GET": member(REVIEW), "POST": member(REVIEW)},
    "quality": member(REVIEW),
    "adjudication": member(REVIEW),
    "adjudication-series": {"GET": member(REVIEW), "POST": member(REVIEW)},
    "adjudication-layer": member(REVIEW, query=lambda ctx: "slice=0&layer=heat"),
    "adjudication-settings": {"GET": member(frozenset({A})), "POST": member(frozenset({A}))},
    "datasets": {"GET": member(DATASET_VIEW), "POST": member(DATASET_EDIT)},
    "dataset": {"GET": member(DATASET_VIEW), "POST": member(DATASET_EDIT)},
    "export-create": {"POST": member(DATASET_EDIT, body=lambda ctx: {"format": "nifti"})},
    "models": member(ANY),
    # the page's import, train and cancel: the API's rules (inference.access.TRAIN_ROLES)
    "model-import": {"POST": member(RUN)},
    "model-train": {"POST": member(RUN, body=lambda ctx: {"dataset_version": ctx["version_id"], "epochs": 1})},
    "training-job-cancel": {"POST": member(RUN)},
    "model-triage": {"POST": member(RUN)},  # the triage API's rules (inference.api_active.RANK_ROLES)
    "series": member(ANY),
    "series-view": member(ANY),
    "assignment": member(ASSIGNMENT_SEE, ASSIGNMENT_BLIND),
}


@dataclass(frozen=True)
class Pattern:
    key: str  # namespace:name, or the route of an unnamed pattern
    name: str | None  # what reverse() takes
    route: str
    pattern: URLPattern = field(compare=False)
    namespace: str = ""


def walk(resolver: URLResolver, prefix: str = "", namespace: str = "") -> Iterator[Pattern]:
    """Every URLPattern under ``resolver``, recursively, with its namespaced name and full route."""
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = ":".join(n for n in (namespace, entry.namespace or "") if n)
            yield from walk(entry, prefix + str(entry.pattern), inner)
            continue
        route = prefix + str(entry.pattern)
        name = ":".join(n for n in (namespace, entry.name or "") if n) if entry.name else None
        yield Pattern(
            key=name or ":".join(n for n in (namespace, route) if n),
            name=name,
            route=route,
            pattern=entry,
            namespace=namespace,
        )


def rules_of(pattern: Pattern, rules: dict[str, Rule | dict[str, Rule]] = RULES) -> dict[str, Rule] | None:
    """The rule per method for a pattern: its own entry, else its namespace's ``ns:*`` entry."""
    entry = rules.get(pattern.key)
    if entry is None and pattern.namespace:
        entry = rules.get(f"{pattern.namespace}:*")
    if entry is None:
        return None
    return entry if isinstance(entry, dict) else {"GET": entry}


def unclassified(resolver: URLResolver, rules: dict[str, Rule | dict[str, Rule]] = RULES) -> list[str]:
    """Keys of the patterns that have no access rule: each one is a view nobody decided about."""
    return sorted({p.key for p in walk(resolver) if rules_of(p, rules) is None})
