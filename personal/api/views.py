"""The personalization API: custom instructions and memory switch, and the user's memories (owner only)."""

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.response import Response

from chatsite.api.views import ApiView
from personal import selectors, services
from personal.api.serializers import MemorySerializer, PersonalizationSerializer, PromptSerializer
from personal.models import Memory, Prompt


class PersonalizationView(ApiView):
    pagination_class = None

    @extend_schema(summary="Your custom instructions and memory switch", responses=PersonalizationSerializer)
    def get(self, request):
        return Response(PersonalizationSerializer(selectors.personalization_get(user_id=request.user.pk)).data)

    @extend_schema(
        summary="Change your custom instructions or memory switch",
        description="Applied to the answers of every chat that has `personal` on (the default for a new chat).",
        request=PersonalizationSerializer, responses=PersonalizationSerializer,
    )
    def patch(self, request):
        data = self.validated(request, PersonalizationSerializer)
        personalization = services.personalization_update(user=request.user, **data)
        return Response(PersonalizationSerializer(personalization).data)


def _refused(exc: services.MemoryRefused) -> exceptions.ValidationError:
    return exceptions.ValidationError({"content": [str(exc)]})


class MemoryListView(ApiView, generics.GenericAPIView):
    serializer_class = MemorySerializer

    @extend_schema(summary="Your memories, most recently changed first", operation_id="api_v1_memories_list",
                   responses=MemorySerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(selectors.memory_list(user=request.user))
        return self.get_paginated_response(MemorySerializer(page, many=True).data)

    @extend_schema(summary="Add a memory", request=MemorySerializer, responses={201: MemorySerializer})
    def post(self, request):
        data = self.validated(request, MemorySerializer)
        try:
            memory = services.memory_create(owner=request.user, content=data["content"])
        except services.MemoryRefused as exc:
            raise _refused(exc) from None
        return Response(MemorySerializer(memory).data, status=status.HTTP_201_CREATED)


def own_memory(request, memory_id: int) -> Memory:
    """The caller's memory; another user's id (or none) is a 404."""
    try:
        return selectors.memory_get(user=request.user, memory_id=memory_id)
    except Memory.DoesNotExist:
        raise exceptions.NotFound("Memory not found.") from None


class MemoryDetailView(ApiView):
    http_method_names = ["get", "patch", "delete", "options"]

    @extend_schema(summary="One of your memories", responses=MemorySerializer)
    def get(self, request, memory_id):
        return Response(MemorySerializer(own_memory(request, memory_id)).data)

    @extend_schema(summary="Change a memory", request=MemorySerializer, responses=MemorySerializer)
    def patch(self, request, memory_id):
        memory = own_memory(request, memory_id)
        data = self.validated(request, MemorySerializer)
        try:
            memory = services.memory_update(memory=memory, content=data["content"])
        except services.MemoryRefused as exc:
            raise _refused(exc) from None
        return Response(MemorySerializer(memory).data)

    @extend_schema(summary="Forget a memory (also the undo of 'Memory saved')", responses={204: None})
    def delete(self, request, memory_id):
        services.memory_delete(memory=own_memory(request, memory_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _prompt_refused(exc: services.PromptRefused) -> exceptions.ValidationError:
    return exceptions.ValidationError({"command": [str(exc)]})


class PromptListView(ApiView, generics.GenericAPIView):
    serializer_class = PromptSerializer

    @extend_schema(summary="Your saved prompts, by command", operation_id="api_v1_prompts_list",
                   responses=PromptSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(selectors.prompt_list(user=request.user))
        return self.get_paginated_response(PromptSerializer(page, many=True).data)

    @extend_schema(summary="Save a prompt", request=PromptSerializer, responses={201: PromptSerializer})
    def post(self, request):
        data = self.validated(request, PromptSerializer)
        try:
            prompt = services.prompt_create(owner=request.user, **data)
        except services.PromptRefused as exc:
            raise _prompt_refused(exc) from None
        return Response(PromptSerializer(prompt).data, status=status.HTTP_201_CREATED)


def own_prompt(request, prompt_id: int) -> Prompt:
    """The caller's prompt; another user's id (or none) is a 404."""
    try:
        return selectors.prompt_get(user=request.user, prompt_id=prompt_id)
    except Prompt.DoesNotExist:
        raise exceptions.NotFound("Prompt not found.") from None


class PromptDetailView(ApiView):
    http_method_names = ["get", "patch", "delete", "options"]

    @extend_schema(summary="One of your prompts", responses=PromptSerializer)
    def get(self, request, prompt_id):
        return Response(PromptSerializer(own_prompt(request, prompt_id)).data)

    @extend_schema(summary="Change a prompt", request=PromptSerializer, responses=PromptSerializer)
    def patch(self, request, prompt_id):
        prompt = own_prompt(request, prompt_id)
        data = self.validated(request, PromptSerializer, partial=True)
        try:
            prompt = services.prompt_update(prompt=prompt, **data)
        except services.PromptRefused as exc:
            raise _prompt_refused(exc) from None
        return Response(PromptSerializer(prompt).data)

    @extend_schema(summary="Delete a prompt", responses={204: None})
    def delete(self, request, prompt_id):
        services.prompt_delete(prompt=own_prompt(request, prompt_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
