"""API routes of the model registry and training jobs, included under /api/ by workbench.urls."""

from django.urls import path

from inference import api_models as api

urlpatterns = [
    path("projects/<uuid:project_id>/models/", api.ModelList.as_view(), name="api-models"),
    path("projects/<uuid:project_id>/models/import/", api.ModelImport.as_view(), name="api-model-import"),
    path("models/<str:model_id>/", api.ModelDetail.as_view(), name="api-model-detail"),
    path(
        "projects/<uuid:project_id>/training-jobs/",
        api.TrainingJobListCreate.as_view(),
        name="api-training-jobs",
    ),
    path("training-jobs/<uuid:job_id>/", api.TrainingJobDetail.as_view(), name="api-training-job-detail"),
    path("training-jobs/<uuid:job_id>/cancel/", api.TrainingJobCancel.as_view(), name="api-training-job-cancel"),
]
