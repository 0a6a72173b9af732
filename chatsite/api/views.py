"""The base of every API view: JSON only, the body limit, pagination, body validation."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.pagination import BasePagination, PageNumberPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from chatsite.api.parsers import JSONParser


class JsonOnlyNegotiation(DefaultContentNegotiation):
    """Always answer JSON: ignores `?format=` (the export view's own parameter) and Accept.

    Streaming requests send `Accept: text/event-stream`; their errors are still JSON.
    """

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ApiPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        # isascii: "²".isdigit() is True, but int("²") raises.
        if raw is not None and not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= self.max_page_size):
            raise exceptions.ValidationError({"page_size": [f"Use a whole number from 1 to {self.max_page_size}."]})
        return super().get_page_size(request)

    def get_page_number(self, request, paginator):
        """The `page` asked for: one whole number from 1 (empty, repeated or not a number is a 400; a number past
        the last page is DRF's 404)."""
        values = request.query_params.getlist(self.page_query_param)
        if not values:
            return 1
        if len(values) > 1 or not (values[0].isascii() and values[0].isdigit() and int(values[0]) >= 1):
            raise exceptions.ValidationError({self.page_query_param: ["Use one whole number from 1."]})
        return values[0]

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"]["maximum"] = self.max_page_size
        return parameters


class LengthRequired(exceptions.APIException):
    status_code = 411
    default_detail = "Send the request body with a Content-Length (chunked bodies are not accepted)."
    default_code = "length_required"


class ApiView(APIView):
    """JSON in and out (the error shape of errors.py), bodies bounded by DATA_UPLOAD_MAX_MEMORY_SIZE, pages of
    ApiPagination; `validated()` reads a body through a serializer."""

    pagination_class: type[BasePagination] | None = ApiPagination  # GenericAPIView's type, for views that are both
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JsonOnlyNegotiation
    def initial(self, request, *args, **kwargs):
        self.check_body_size(request)
        super().initial(request, *args, **kwargs)

    def check_body_size(self, request):
        # DRF streams JSON bodies past Django's DATA_UPLOAD_MAX_MEMORY_SIZE check; reading the body
        # through Django applies it (RequestDataTooBig -> 413 in the error shape).
        django_request = request._request
        if "HTTP_TRANSFER_ENCODING" in django_request.META and not django_request.META.get("CONTENT_LENGTH"):
            # DRF reads no body without a Content-Length: a chunked body would be silently ignored.
            raise LengthRequired()
        if int(django_request.META.get("CONTENT_LENGTH") or 0) > self.max_body_bytes():
            raise RequestDataTooBig()

    def max_body_bytes(self) -> int:
        return settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    def body(self, request) -> dict:
        """The JSON body, which must be an object (a list, a string or null is a 400)."""
        data = request.data
        if not isinstance(data, dict):
            raise exceptions.ValidationError("The request body must be a JSON object.")
        return data

    def validated(self, request, serializer_class, **kwargs) -> dict:
        """The JSON body as `serializer_class` validates it (a 400 in the one error shape when it doesn't)."""
        kwargs.setdefault("context", {"request": request, "user": request.user})
        serializer = serializer_class(data=self.body(request), **kwargs)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data
