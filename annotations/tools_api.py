"""API of the reader's segmentation tools: grow from seeds and the threshold brush.

Who may call them: whoever may write the assignment's annotations (its current reader and
the project's reviewers); everyone else gets the assignment's 404 or 403. The answer is a
``mask`` geometry (rows, columns, rle) to be saved as an annotation, or a 400 in words.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import tools
from annotations.access import get_assignment_for_user, require_annotation_writer

MAX_SEEDS = 500  # a scribble is sampled by the browser; more points add nothing
MAX_STROKE = 4000  # brush centres along one stroke, sampled every half radius


class _Point(serializers.ListField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=serializers.FloatField(), min_length=2, max_length=2, **kwargs)


class _ToolIn(serializers.Serializer):
    sop_instance_uid = serializers.CharField(max_length=64, help_text="An image of the assignment's series.")
    frame = serializers.IntegerField(min_value=0, default=0)


class GrowFromSeedsIn(_ToolIn):
    inside = serializers.ListField(child=_Point(), min_length=1, max_length=MAX_SEEDS, help_text="[x, y] seeds.")
    outside = serializers.ListField(child=_Point(), max_length=MAX_SEEDS, default=list, help_text="[x, y] seeds.")


class ThresholdBrushIn(_ToolIn):
    points = serializers.ListField(
        child=_Point(), min_length=1, max_length=MAX_STROKE, help_text="[x, y] centres of the brush along a stroke."
    )
    radius_mm = serializers.FloatField(min_value=0.1, max_value=200, required=False)
    radius_px = serializers.FloatField(min_value=0.5, max_value=500, required=False)
    low = serializers.FloatField(help_text="Lowest value painted (HU for CT).")
    high = serializers.FloatField(help_text="Highest value painted (HU for CT).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("radius_mm" in attrs) == ("radius_px" in attrs):
            raise ValidationError({"radius_mm": "Give the radius in mm or in pixels (radius_px), not both."})
        if attrs["low"] > attrs["high"]:
            raise ValidationError({"low": "Must not be above high."})
        return attrs


class FillBetweenIn(serializers.Serializer):
    label = serializers.UUIDField(  # type: ignore[assignment]  # a declared field, not Field.label
        help_text="A mask, polygon or freehand label of the project: its saved shapes are the key slices."
    )


class PropagateIn(_ToolIn):
    label = serializers.UUIDField()  # type: ignore[assignment]  # a declared field, not Field.label
    direction = serializers.ChoiceField(choices=["next", "previous"], help_text="In the series' spatial order.")


class MaskOut(serializers.Serializer):
    rows = serializers.IntegerField()
    columns = serializers.IntegerField()
    rle = serializers.ListField(child=serializers.IntegerField())
    area_px = serializers.IntegerField()


def _run(request: Request, assignment_id: str, serializer: type[_ToolIn], fn: Any) -> Response:
    assignment = get_assignment_for_user(request.user, assignment_id)
    require_annotation_writer(request.user, assignment)
    valid = serializer(data=request.data)
    valid.is_valid(raise_exception=True)
    data = dict(valid.validated_data)
    try:
        result = fn(assignment=assignment, sop_instance_uid=data.pop("sop_instance_uid"), **data)
    except tools.ToolError as exc:
        raise ValidationError(str(exc)) from exc
    return Response(MaskOut(result).data)


class GrowFromSeeds(APIView):
    @extend_schema(request=GrowFromSeedsIn, responses=MaskOut)
    def post(self, request: Request, assignment_id: str) -> Response:
        """The region grown from seeds inside (and optionally outside) a structure on one frame."""
        return _run(request, assignment_id, GrowFromSeedsIn, tools.tool_grow_from_seeds)


class ThresholdBrush(APIView):
    @extend_schema(request=ThresholdBrushIn, responses=MaskOut)
    def post(self, request: Request, assignment_id: str) -> Response:
        """The pixels a brush stroke through ``points`` paints, only where low <= value <= high."""
        return _run(request, assignment_id, ThresholdBrushIn, tools.tool_threshold_brush)


class MaskAtOut(MaskOut):
    sop_instance_uid = serializers.CharField()
    frame = serializers.IntegerField()


class PolygonAtOut(serializers.Serializer):
    sop_instance_uid = serializers.CharField()
    frame = serializers.IntegerField()
    points = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()))


class FillBetweenOut(serializers.Serializer):
    masks = MaskAtOut(many=True, required=False, help_text="for a mask label")
    polygons = PolygonAtOut(many=True, required=False, help_text="for a polygon or freehand label")


class FillBetween(APIView):
    @extend_schema(request=FillBetweenIn, responses=FillBetweenOut)
    def post(self, request: Request, assignment_id: str) -> Response:
        """The label's shape on every slice between two slices that hold it (shape-based
        interpolation): masks for a mask label, contours for a polygon or freehand label, for the
        annotator to save as ordinary annotations; nothing is written here."""
        assignment = get_assignment_for_user(request.user, assignment_id)
        require_annotation_writer(request.user, assignment)
        valid = FillBetweenIn(data=request.data)
        valid.is_valid(raise_exception=True)
        try:
            filled = tools.tool_fill_between(assignment=assignment, label_id=valid.validated_data["label"])
        except tools.ToolError as exc:
            raise ValidationError(str(exc)) from exc
        return Response(FillBetweenOut(filled).data)


class Propagate(APIView):
    @extend_schema(request=PropagateIn, responses=MaskAtOut)
    def post(self, request: Request, assignment_id: str) -> Response:
        """This slice's saved mask of ``label`` carried to the next (or previous) slice, for the
        annotator to save as an ordinary mask; nothing is written here."""
        assignment = get_assignment_for_user(request.user, assignment_id)
        require_annotation_writer(request.user, assignment)
        valid = PropagateIn(data=request.data)
        valid.is_valid(raise_exception=True)
        data = valid.validated_data
        try:
            mask = tools.tool_propagate(
                assignment=assignment,
                sop_instance_uid=data["sop_instance_uid"],
                frame=data["frame"],
                label_id=data["label"],
                step=1 if data["direction"] == "next" else -1,
            )
        except tools.ToolError as exc:
            raise ValidationError(str(exc)) from exc
        return Response(MaskAtOut(mask).data)


class GrowFromSeeds3dOut(serializers.Serializer):
    masks = MaskAtOut(many=True, help_text="one per slice the region reaches, in the series' spatial order")


class GrowFromSeeds3d(APIView):
    @extend_schema(request=GrowFromSeedsIn, responses=GrowFromSeeds3dOut)
    def post(self, request: Request, assignment_id: str) -> Response:
        """The region grown through the series' volume from seeds clicked on one slice: a mask
        for every slice it reaches, for the annotator to save as ordinary masks; nothing is written."""
        assignment = get_assignment_for_user(request.user, assignment_id)
        require_annotation_writer(request.user, assignment)
        valid = GrowFromSeedsIn(data=request.data)
        valid.is_valid(raise_exception=True)
        data = dict(valid.validated_data)
        try:
            grown = tools.tool_grow_from_seeds_3d(assignment=assignment, **data)
        except tools.ToolError as exc:
            raise ValidationError(str(exc)) from exc
        return Response(GrowFromSeeds3dOut(grown).data)


class ThresholdBrush3d(APIView):
    @extend_schema(request=ThresholdBrushIn, responses=GrowFromSeeds3dOut)
    def post(self, request: Request, assignment_id: str) -> Response:
        """The threshold brush as a ball through the series' volume: a mask for every slice the
        stroke's ball paints, for the annotator to save as ordinary masks; nothing is written."""
        assignment = get_assignment_for_user(request.user, assignment_id)
        require_annotation_writer(request.user, assignment)
        valid = ThresholdBrushIn(data=request.data)
        valid.is_valid(raise_exception=True)
        try:
            painted = tools.tool_threshold_brush_3d(assignment=assignment, **dict(valid.validated_data))
        except tools.ToolError as exc:
            raise ValidationError(str(exc)) from exc
        return Response(GrowFromSeeds3dOut(painted).data)
