"""Personal API keys through the API: list, create (the key is shown once), revoke."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, generics, serializers, status
from rest_framework.response import Response

from accounts.models import ApiKey
from chatsite.api.fields import StrictBooleanField, TextField
from chatsite.api.views import ApiView
from teams.policy import Feature, policy_for


class ApiKeySerializer(serializers.ModelSerializer):
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields: tuple[str, ...] = (
            "id", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at", "is_active",
            "store_chats",
        )
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = TextField(max_length=100)
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Optional; must be in the future."
    )
    store_chats = StrictBooleanField(
        default=True, help_text="false: calls with this key are answered and counted but their chats are temporary "
        "(not listed, deleted later), as if each sent store: false.",
    )

    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("The expiry must be in the future.")
        return value


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The key itself. Shown only in this response.")

    class Meta(ApiKeySerializer.Meta):
        fields = (*ApiKeySerializer.Meta.fields, "key")
        read_only_fields = fields


class ApiKeyListView(ApiView, generics.GenericAPIView):
    serializer_class = ApiKeySerializer

    @extend_schema(
        summary="Your API keys (never the keys themselves)",
        operation_id="api_v1_keys_list",
        responses=ApiKeySerializer(many=True),
    )
    def get(self, request):
        page = self.paginate_queryset(ApiKey.objects.for_user(request.user).order_by("-created_at", "-pk"))
        return self.get_paginated_response(ApiKeySerializer(page, many=True).data)

    @extend_schema(
        summary="Create an API key",
        description=(
            "The response holds the key once; only its hash is stored. Copy it now. Only from a logged-in "
            "session: a key cannot mint more keys (a leaked key could otherwise outlive its revocation)."
        ),
        request=ApiKeyCreateSerializer,
        responses={201: ApiKeyCreatedSerializer},
        # A logged-in session only (with its CSRF token): a key gets a 403. A security requirement object, as
        # drf-spectacular puts in the schema as given (its annotation says names).
        auth=[{"cookieAuth": []}],  # type: ignore[list-item]
    )
    def post(self, request):
        if isinstance(request.auth, ApiKey):
            raise exceptions.PermissionDenied("Create API keys from a logged-in session, not with a key.")
        if not policy_for(request.user).allows(Feature.API_KEYS):
            raise exceptions.PermissionDenied("Your account may not create API keys.", code="feature_disabled")
        data = self.validated(request, ApiKeyCreateSerializer)
        key, raw = ApiKey.generate(user=request.user, **data)
        key.key = raw
        return Response(ApiKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)


class ApiKeyDetailView(ApiView):
    http_method_names = ["get", "delete", "options"]

    def get_key(self, request, key_id) -> ApiKey:
        try:
            return ApiKey.objects.for_user(request.user).get(pk=key_id)
        except ApiKey.DoesNotExist:
            raise exceptions.NotFound("API key not found.") from None

    @extend_schema(summary="One of your API keys", responses=ApiKeySerializer)
    def get(self, request, key_id):
        return Response(ApiKeySerializer(self.get_key(request, key_id)).data)

    @extend_schema(summary="Revoke an API key (it stops working at once)", responses={204: None})
    def delete(self, request, key_id):
        key = self.get_key(request, key_id)
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
        return Response(status=status.HTTP_204_NO_CONTENT)
