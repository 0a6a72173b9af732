"""OpenAPI additions: the API-key security scheme, and the one error shape on every operation."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "example": "invalid"},
                "message": {"type": "string"},
                "fields": {"type": "object", "description": "Validation errors by field name."},
                "type": {"type": "string", "description": "OpenAI-compatible endpoints only."},
                "param": {"nullable": True, "description": "OpenAI-compatible endpoints only."},
            },
        }
    },
}


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        definition = build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Bearer")  # noqa: S106
        definition["description"] = "A personal API key (cs_...), created on your profile page or at /api/v1/keys/."
        return definition


def add_error_responses(result, generator, request, public):
    """Every operation may answer an error in the one shape (400, 401, 404, 409, 413, 429, 5xx)."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"$ref": "#/components/schemas/Error"}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.setdefault("default", {
                "description": "An error, in the one error shape. 429 answers carry Retry-After.",
                "content": {"application/json": {"schema": reference}},
            })
    return result
