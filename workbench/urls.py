from csp.decorators import csp_update
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from anonymizer import api as anon_api
from anonymizer import tus, vocabulary_api
from frontend.login import AdminLockoutAuthenticationForm
from workbench.api import catalog, viewer, wado

# Swagger UI and ReDoc inject <style> elements at run time (ReDoc's styled-components refuse
# to start without them). Inline styles cannot run script, so the two documentation pages,
# and only they, may use them; their scripts stay same-origin files.
_docs_csp = csp_update({"style-src": ["'self'", "'unsafe-inline'"]})

api: list[URLPattern | URLResolver] = [
    path("projects/", catalog.ProjectList.as_view(), name="api-projects"),
    path("projects/<uuid:project_id>/", catalog.ProjectDetail.as_view(), name="api-project-detail"),
    path("projects/<uuid:project_id>/studies/", catalog.StudyList.as_view(), name="api-studies"),
    path("projects/<uuid:project_id>/batches/", anon_api.BatchListCreate.as_view(), name="api-batches"),
    path("projects/<uuid:project_id>/quarantine/", anon_api.QuarantineList.as_view(), name="api-quarantine"),
    path("projects/<uuid:project_id>/vault/lookup/", anon_api.VaultLookup.as_view(), name="api-vault-lookup"),
    path("projects/<uuid:project_id>/audit/", anon_api.AuditList.as_view(), name="api-audit"),
    path("projects/<uuid:project_id>/deid-report/", anon_api.ProjectDeidReport.as_view(), name="api-deid-report"),
    path("projects/<uuid:project_id>/vocabulary/", vocabulary_api.VocabularyList.as_view(), name="api-vocabulary"),
    path(
        "projects/<uuid:project_id>/vocabulary/<str:term>/",
        vocabulary_api.VocabularyTermDetail.as_view(),
        name="api-vocabulary-term",
    ),
    path("studies/<uuid:study_id>/", catalog.StudyDetail.as_view(), name="api-study-detail"),
    path("studies/<uuid:study_id>/deid-report/", anon_api.StudyDeidReport.as_view(), name="api-study-deid-report"),
    path("series/<uuid:series_id>/", catalog.SeriesDetail.as_view(), name="api-series-detail"),
    path("series/<uuid:series_id>/viewer/", viewer.SeriesViewer.as_view(), name="api-series-viewer"),
    path("instances/<uuid:instance_id>/", catalog.InstanceDetail.as_view(), name="api-instance-detail"),
    path("instances/<uuid:instance_id>/file/", catalog.InstanceFile.as_view(), name="api-instance-file"),
    path("instances/<uuid:instance_id>/tags/", catalog.InstanceTags.as_view(), name="api-instance-tags"),
    path("instances/<uuid:instance_id>/render.png", catalog.InstanceRender.as_view(), name="api-instance-render"),
    path("batches/<uuid:batch_id>/", anon_api.BatchDetail.as_view(), name="api-batch-detail"),
    # Resumable (tus) uploads: anonymizer.tus.
    path("projects/<uuid:project_id>/uploads/", tus.UploadCreate.as_view(), name="api-uploads"),
    path("uploads/<uuid:upload_id>/", tus.UploadDetail.as_view(), name="api-upload"),
    path(
        "quarantine/<uuid:item_id>/reprocess/",
        anon_api.QuarantineReprocess.as_view(),
        name="api-quarantine-reprocess",
    ),
    path(
        "quarantine/<uuid:item_id>/preview.png",
        anon_api.QuarantinePreview.as_view(),
        name="api-quarantine-preview",
    ),
    path(
        "quarantine/<uuid:item_id>/discard/",
        anon_api.QuarantineAction.as_view(),
        name="api-quarantine-discard",
    ),
    path("", include("annotations.urls")),
    path("", include("datasets.urls")),
    path("", include("inference.urls")),
    path("", include("inference.urls_active")),
    path("", include("inference.urls_models")),
    path("", include("inference.urls_retraining")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", _docs_csp(SpectacularSwaggerSplitView.as_view(url_name="api-schema")), name="api-docs"),
    path(
        "redoc/",
        _docs_csp(SpectacularRedocView.as_view(url_name="api-schema", template_name="frontend/redoc.html")),
        name="api-redoc",
    ),
]

admin.site.login_form = AdminLockoutAuthenticationForm

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include(api)),
    path("wado/", wado.Wado.as_view(), name="wado"),
    path("", include("frontend.urls")),
]

handler400 = "frontend.views.bad_request"
handler404 = "frontend.views.not_found"
handler500 = "frontend.views.server_error"
