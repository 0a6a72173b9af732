"""Pages of the chat API whose cost is one page: a search page that is not counted."""

from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from chatsite.api.views import ApiPagination

# A search page past this is a 404 without a query.
MAX_SEARCH_PAGE = 1_000_000


class ConversationPagination(ApiPagination):
    """The conversation list's pages. A search is not counted (`count` is null): counting would run the search
    over every one of the user's chats, where a page stops once it holds `page_size` of them. Its `next` is set
    when one more matched, read with the page."""

    def paginate_queryset(self, queryset, request, view=None):
        self.counted = not request.query_params.get("search", "").strip()
        if self.counted:
            return super().paginate_queryset(queryset, request, view)
        self.request = request
        self.url = request.build_absolute_uri()
        page_size = self.get_page_size(request)
        self.number = int(self.get_page_number(request, None))
        if self.number > MAX_SEARCH_PAGE:  # past any history, and an OFFSET the database could not take
            raise exceptions.NotFound("Invalid page.")
        offset = (self.number - 1) * page_size
        rows = list(queryset[offset : offset + page_size + 1])
        if not rows and self.number > 1:
            raise exceptions.NotFound("Invalid page.")
        self.has_next = len(rows) > page_size
        return rows[:page_size]

    def get_paginated_response(self, data):
        if self.counted:
            return super().get_paginated_response(data)
        return Response({
            "count": None, "next": self.get_next_link(), "previous": self.get_previous_link(), "results": data,
        })

    def get_next_link(self):
        if self.counted:
            return super().get_next_link()
        if not self.has_next:
            return None
        return replace_query_param(self.url, self.page_query_param, self.number + 1)

    def get_previous_link(self):
        if self.counted:
            return super().get_previous_link()
        if self.number == 1:
            return None
        if self.number == 2:
            return remove_query_param(self.url, self.page_query_param)
        return replace_query_param(self.url, self.page_query_param, self.number - 1)

    def get_paginated_response_schema(self, schema):
        response = super().get_paginated_response_schema(schema)
        response["properties"]["count"] = {
            "type": "integer", "nullable": True, "example": 123,
            "description": "How many match; null for a search (`next` says whether more follow).",
        }
        return response
