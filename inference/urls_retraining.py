"""API route of the retraining rule, included under /api/ by workbench.urls."""

from __future__ import annotations

from django.urls import path

from inference import api_retraining

urlpatterns = [
    path(
        "projects/<uuid:project_id>/retraining/",
        api_retraining.RetrainingView.as_view(),
        name="api-retraining",
    ),
]
