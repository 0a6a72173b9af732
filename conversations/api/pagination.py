"""Pages of the chat API whose cost is one page: a search page that is not counted."""

from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from chatsite.api.views import ApiPagination

DOCUMENT_HIT_FIELDS = (
    "document_id", "document_name", "knowledge_base_id", "knowledge_base_name", "passage_id", "page", "url", "snippet",
)
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
        text = {"type": "string"}
        response["properties"]["documents"] = {
            "type": "array",
            "description": "Only in a search: your knowledge documents whose passages hold its words (the first "
            "matching passage of each of the newest five), on its first page; empty on later pages.",
            "items": {"type": "object", "required": [*DOCUMENT_HIT_FIELDS], "properties": {
                "document_id": {"type": "integer"}, "document_name": text, "knowledge_base_id": {"type": "integer"},
                "knowledge_base_name": text, "passage_id": {"type": "integer"},
                "page": {"type": "integer", "description": "The page the passage starts on (PDF; 1 otherwise)."},
                "url": {**text, "description": "The document's page opened at this passage."},
                "snippet": {"type": "object", "required": ["source", "text", "html"], "properties": {
                    "source": {"type": "string", "enum": ["knowledge"]},
                    "text": {**text, "description": "The plain text around the hit, with … where it was cut."},
                    "html": {**text, "description": "The same, HTML-escaped, each occurrence of the search in "
                             "<mark> (none when only a stemmed form of a word matched)."},
                }},
            }},
        }
        return response
