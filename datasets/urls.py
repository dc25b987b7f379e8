"""API routes of the datasets app, included under /api/ by workbench.urls."""

from django.urls import path

from datasets import api

urlpatterns = [
    path("projects/<uuid:project_id>/datasets/", api.DatasetListCreate.as_view(), name="api-datasets"),
    path("datasets/<uuid:dataset_id>/", api.DatasetDetail.as_view(), name="api-dataset-detail"),
    path("datasets/<uuid:dataset_id>/versions/", api.VersionListFreeze.as_view(), name="api-dataset-versions"),
    path("versions/<str:version_id>/", api.VersionDetail.as_view(), name="api-version-detail"),
    path("versions/<str:version_id>/manifest/", api.VersionManifest.as_view(), name="api-version-manifest"),
    path("versions/<str:version_id>/compare/", api.VersionCompare.as_view(), name="api-version-compare"),
    path("versions/<str:version_id>/exports/", api.ExportListCreate.as_view(), name="api-version-exports"),
    path("exports/<uuid:export_id>/", api.ExportDetail.as_view(), name="api-export-detail"),
    path("exports/<uuid:export_id>/download/", api.ExportDownload.as_view(), name="api-export-download"),
]
