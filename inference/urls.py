"""API routes of pre-annotation, included under /api/ by workbench.urls."""

from django.urls import path

from inference import api_runs

urlpatterns = [
    path(
        "projects/<uuid:project_id>/inference-runs/",
        api_runs.InferenceRunListCreate.as_view(),
        name="api-inference-runs",
    ),
    path("inference-runs/<uuid:run_id>/", api_runs.InferenceRunDetail.as_view(), name="api-inference-run-detail"),
    path("assignments/<uuid:assignment_id>/proposals/", api_runs.ProposalList.as_view(), name="api-proposals"),
    path(
        "assignments/<uuid:assignment_id>/proposals/accept-above/",
        api_runs.ProposalAcceptAbove.as_view(),
        name="api-proposals-accept-above",
    ),
    path(
        "assignments/<uuid:assignment_id>/proposals/<uuid:proposal_id>/accept/",
        api_runs.ProposalAccept.as_view(),
        name="api-proposal-accept",
    ),
    path(
        "assignments/<uuid:assignment_id>/proposals/<uuid:proposal_id>/reject/",
        api_runs.ProposalReject.as_view(),
        name="api-proposal-reject",
    ),
]
