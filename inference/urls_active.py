from __future__ import annotations

from django.urls import path

from inference import api_active, api_triage

urlpatterns = [
    path("projects/<uuid:project_id>/active-learning/", api_active.RankingList.as_view(), name="api-active-learning"),
    path(
        "projects/<uuid:project_id>/active-learning/rank/",
        api_active.RankCreate.as_view(),
        name="api-active-learning-rank",
    ),
    path(
        "projects/<uuid:project_id>/active-learning/fill/",
        api_active.WorklistsFill.as_view(),
        name="api-active-learning-fill",
    ),
    path(
        "projects/<uuid:project_id>/active-learning/next/",
        api_active.NextBestCase.as_view(),
        name="api-active-learning-next",
    ),
    path("projects/<uuid:project_id>/triage/", api_triage.TriageCreate.as_view(), name="api-triage"),
    path(
        "assignments/<uuid:assignment_id>/triage/",
        api_triage.AssignmentTriage.as_view(),
        name="api-assignment-triage",
    ),
]
