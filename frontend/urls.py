from django.contrib.auth import views as auth_views
from django.urls import path

from annotations import adjudication_views
from annotations import views as annotation_views
from datasets import views as dataset_views
from frontend import compliance, login, settings_page, viewer_pages, views, vocabulary
from inference import views as inference_views

urlpatterns = [
    path("login/", login.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.home, name="home"),
    path("projects/<uuid:project_id>/", views.project_detail, name="project"),
    path("projects/<uuid:project_id>/upload/", views.upload, name="upload"),
    path("projects/<uuid:project_id>/batches/", compliance.batch_list, name="batches"),
    path("projects/<uuid:project_id>/quarantine/", compliance.quarantine_list, name="quarantine"),
    path("projects/<uuid:project_id>/audit/", compliance.audit_log, name="audit"),
    path("projects/<uuid:project_id>/deid-report/", compliance.deid_report, name="deid-report"),
    path(
        "projects/<uuid:project_id>/deid-report/download/", compliance.deid_report_download, name="deid-report-download"
    ),
    path("projects/<uuid:project_id>/vault/", compliance.vault, name="vault"),
    path("projects/<uuid:project_id>/vocabulary/", vocabulary.vocabulary_page, name="vocabulary"),
    path("projects/<uuid:project_id>/vocabulary/remove/", vocabulary.vocabulary_remove, name="vocabulary-remove"),
    path("projects/<uuid:project_id>/settings/", settings_page.deid_settings, name="deid-settings"),
    path("projects/<uuid:project_id>/assignments/", annotation_views.assignments_admin, name="assignments"),
    path("projects/<uuid:project_id>/review/", annotation_views.review, name="review"),
    path("projects/<uuid:project_id>/adjudication/", adjudication_views.adjudication_list, name="adjudication"),
    path(
        "projects/<uuid:project_id>/adjudication/settings/",
        adjudication_views.adjudication_settings,
        name="adjudication-settings",
    ),
    path(
        "projects/<uuid:project_id>/adjudication/<uuid:series_id>/",
        adjudication_views.adjudication_detail,
        name="adjudication-series",
    ),
    path(
        "projects/<uuid:project_id>/adjudication/<uuid:series_id>/layer.png",
        adjudication_views.adjudication_layer,
        name="adjudication-layer",
    ),
    path("projects/<uuid:project_id>/quality/", annotation_views.quality, name="quality"),
    path("projects/<uuid:project_id>/datasets/", dataset_views.dataset_list, name="datasets"),
    path("projects/<uuid:project_id>/models/", inference_views.model_list, name="models"),
    path("projects/<uuid:project_id>/models/import/", inference_views.model_import, name="model-import"),
    path("projects/<uuid:project_id>/models/train/", inference_views.training_job_create, name="model-train"),
    path("models/<str:model_id>/triage/", inference_views.triage_create, name="model-triage"),
    path("training-jobs/<uuid:job_id>/cancel/", inference_views.training_job_cancel, name="training-job-cancel"),
    path("datasets/<uuid:dataset_id>/", dataset_views.dataset_detail, name="dataset"),
    path("versions/<str:version_id>/export/", dataset_views.export_create, name="export-create"),
    path("worklist/", annotation_views.worklist, name="worklist"),
    path("projects/<uuid:project_id>/next-case/", inference_views.next_case, name="next-case"),
    path("series/<uuid:series_id>/", views.series_detail, name="series"),
    path("series/<uuid:series_id>/view/", viewer_pages.series_view, name="series-view"),
    path("assignments/<uuid:assignment_id>/", viewer_pages.assignment_view, name="assignment"),
    path("studies/<uuid:study_id>/deid-report/", compliance.study_deid_report, name="study-deid-report"),
    path("batches/<uuid:batch_id>/", compliance.batch_detail, name="batch"),
    path(
        "quarantine/<uuid:item_id>/reprocess/",
        compliance.quarantine_action,
        {"action": "reprocess"},
        name="quarantine-reprocess",
    ),
    path("quarantine/<uuid:item_id>/preview.png", compliance.quarantine_preview, name="quarantine-preview"),
    path(
        "quarantine/<uuid:item_id>/discard/",
        compliance.quarantine_action,
        {"action": "discard"},
        name="quarantine-discard",
    ),
]
