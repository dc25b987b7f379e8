"""API routes of the annotations app, included under /api/ by workbench.urls."""

from django.urls import path

from annotations import adjudication_api, api, tools_api

urlpatterns = [
    path("projects/<uuid:project_id>/label-schema/", api.LabelSchemaView.as_view(), name="api-label-schema"),
    path(
        "projects/<uuid:project_id>/label-schema/versions/",
        api.LabelSchemaVersions.as_view(),
        name="api-label-schema-versions",
    ),
    path("projects/<uuid:project_id>/assignments/", api.AssignmentListCreate.as_view(), name="api-assignments"),
    path("projects/<uuid:project_id>/agreement/", api.Agreement.as_view(), name="api-agreement"),
    path(
        "projects/<uuid:project_id>/adjudication/",
        adjudication_api.AdjudicationList.as_view(),
        name="api-adjudication",
    ),
    path(
        "projects/<uuid:project_id>/consensus-settings/",
        adjudication_api.ConsensusSettingsView.as_view(),
        name="api-consensus-settings",
    ),
    path("series/<uuid:series_id>/consensus/", adjudication_api.ConsensusDetail.as_view(), name="api-consensus"),
    path(
        "series/<uuid:series_id>/consensus/decide/",
        adjudication_api.ConsensusDecide.as_view(),
        name="api-consensus-decide",
    ),
    path("assignments/mine/", api.AssignmentMine.as_view(), name="api-assignments-mine"),
    path("assignments/<uuid:assignment_id>/", api.AssignmentDetail.as_view(), name="api-assignment-detail"),
    path(
        "assignments/<uuid:assignment_id>/submit/",
        api.AssignmentAction.as_view(action_name="submit"),
        name="api-assignment-submit",
    ),
    path(
        "assignments/<uuid:assignment_id>/accept/",
        api.AssignmentAction.as_view(action_name="accept"),
        name="api-assignment-accept",
    ),
    path(
        "assignments/<uuid:assignment_id>/return/",
        api.AssignmentReturn.as_view(),
        name="api-assignment-return",
    ),
    path(
        "assignments/<uuid:assignment_id>/tools/grow-from-seeds/",
        tools_api.GrowFromSeeds.as_view(),
        name="api-tool-grow-from-seeds",
    ),
    path(
        "assignments/<uuid:assignment_id>/tools/grow-from-seeds-3d/",
        tools_api.GrowFromSeeds3d.as_view(),
        name="api-tool-grow-from-seeds-3d",
    ),
    path(
        "assignments/<uuid:assignment_id>/tools/threshold-brush-3d/",
        tools_api.ThresholdBrush3d.as_view(),
        name="api-tool-threshold-brush-3d",
    ),
    path(
        "assignments/<uuid:assignment_id>/tools/threshold-brush/",
        tools_api.ThresholdBrush.as_view(),
        name="api-tool-threshold-brush",
    ),
    path(
        "assignments/<uuid:assignment_id>/tools/fill-between/",
        tools_api.FillBetween.as_view(),
        name="api-tool-fill-between",
    ),
    path(
        "assignments/<uuid:assignment_id>/tools/propagate/",
        tools_api.Propagate.as_view(),
        name="api-tool-propagate",
    ),
    path("annotations/", api.AnnotationListCreate.as_view(), name="api-annotations"),
    path("annotations/<uuid:annotation_id>/", api.AnnotationDetail.as_view(), name="api-annotation-detail"),
    path("annotations/<uuid:annotation_id>/history/", api.AnnotationHistory.as_view(), name="api-annotation-history"),
]
