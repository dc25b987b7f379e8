"""Page-number pagination that refuses what it cannot honour instead of guessing.

Every list endpoint under /api/ answers the same envelope, ``{"count", "next", "previous",
"results"}``, through :class:`Pagination`, with the same ``page`` and ``page_size``
parameters and bounds: generic list views by the DRF default, plain APIViews through
:class:`PaginatedList` (tests/test_list_envelopes.py walks them all).
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

MAX_PAGE = 10**9  # past any real page; keeps the number an ordinary integer everywhere


def _positive(request: Request, name: str, maximum: int) -> int | None:
    """The parameter as an integer in 1..maximum, None when absent; 400 naming it otherwise."""
    raw = request.query_params.get(name)
    if raw is None or raw in Pagination.last_page_strings:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= maximum:
        raise ValidationError({name: [f"Must be a whole number from 1 to {maximum}."]})
    return value


class Pagination(PageNumberPagination):
    """DRF's page numbers, but a bad ``page`` or ``page_size`` answers 400 rather than being ignored.

    DRF falls back to the default size on ``page_size=null`` or ``-1``: a client with a typo would
    silently get other pages than it asked for.
    """

    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_page_size(self, request: Request) -> int | None:
        return _positive(request, self.page_size_query_param, self.max_page_size) or self.page_size

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any] | None:
        _positive(request, self.page_query_param, MAX_PAGE)
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        bounds = {self.page_query_param: MAX_PAGE, self.page_size_query_param: self.max_page_size}
        for parameter in parameters:
            parameter["schema"] = {**parameter["schema"], "minimum": 1, "maximum": bounds[parameter["name"]]}
        return parameters


# For an APIView whose GET lists: ``return self.paginated(request, queryset, SerializerOut)``.
# Setting ``pagination_class`` also lets the schema describe the envelope and its parameters
# (workbench.api.schema.AutoSchema keeps it to GET). No docstring: the schema would take it as
# the description of every view that has none of its own.
class PaginatedList:
    pagination_class = Pagination

    def paginated(
        self, request: Request, rows: Any, serializer_class: type[BaseSerializer[Any]], **kwargs: Any
    ) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(serializer_class(page, many=True, **kwargs).data)
