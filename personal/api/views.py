"""The personalization API: custom instructions and memory switch, the user's memories (owner only), prompts
(changed by their owner only; seen by the members of the groups they are shared with), and assistants (changed by
their owner only; used by the members of their groups, by anyone who has their link when shared, by all when
featured)."""

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.response import Response

from chatsite.api.views import ApiView
from conversations.models import Conversation
from conversations.services import conversation_create
from personal import selectors, services
from personal.api.serializers import (
    AssistantChatSerializer,
    AssistantSerializer,
    MemorySerializer,
    PersonalizationSerializer,
    PromptSerializer,
    UsableAssistantSerializer,
)
from personal.models import Assistant, Memory, Prompt


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


def _sharing_refused(exc: services.SharingRefused) -> exceptions.ValidationError:
    return exceptions.ValidationError({exc.field: [str(exc)]})


class PromptListView(ApiView, generics.GenericAPIView):
    serializer_class = PromptSerializer

    @extend_schema(
        summary="Your saved prompts and those shared with your groups, by command",
        description="The prompts of the `/` menu; `mine` is false for one shared with you (you may not change it).",
        operation_id="api_v1_prompts_list", responses=PromptSerializer(many=True),
    )
    def get(self, request):
        page = self.paginate_queryset(selectors.prompts_visible(user=request.user))
        return self.get_paginated_response(PromptSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(summary="Save a prompt", request=PromptSerializer, responses={201: PromptSerializer})
    def post(self, request):
        data = self.validated(request, PromptSerializer)
        try:
            prompt = services.prompt_create(owner=request.user, **data)
        except services.PromptRefused as exc:
            raise _sharing_refused(exc) from None
        return Response(_prompt_data(request, prompt), status=status.HTTP_201_CREATED)


def _prompt_data(request, prompt: Prompt) -> dict:
    return PromptSerializer(prompt, context={"request": request}).data


def own_prompt(request, prompt_id: int) -> Prompt:
    """The caller's prompt; another user's id (or none) is a 404, even for one shared with them."""
    try:
        return selectors.prompt_get(user=request.user, prompt_id=prompt_id)
    except Prompt.DoesNotExist:
        raise exceptions.NotFound("Prompt not found.") from None


def visible_prompt(request, prompt_id: int) -> Prompt:
    """The caller's prompt or one shared with a group they are in; any other id is a 404."""
    try:
        return selectors.prompt_visible_get(user=request.user, prompt_id=prompt_id)
    except Prompt.DoesNotExist:
        raise exceptions.NotFound("Prompt not found.") from None


class PromptDetailView(ApiView):
    http_method_names = ["get", "patch", "delete", "options"]

    @extend_schema(summary="One of your prompts, or one shared with your groups", responses=PromptSerializer)
    def get(self, request, prompt_id):
        return Response(_prompt_data(request, visible_prompt(request, prompt_id)))

    @extend_schema(summary="Change a prompt", request=PromptSerializer, responses=PromptSerializer)
    def patch(self, request, prompt_id):
        prompt = own_prompt(request, prompt_id)
        data = self.validated(request, PromptSerializer, partial=True)
        try:
            prompt = services.prompt_update(prompt=prompt, **data)
        except services.PromptRefused as exc:
            raise _sharing_refused(exc) from None
        return Response(_prompt_data(request, prompt))

    @extend_schema(summary="Delete a prompt", responses={204: None})
    def delete(self, request, prompt_id):
        services.prompt_delete(prompt=own_prompt(request, prompt_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class AssistantListView(ApiView, generics.GenericAPIView):
    serializer_class = AssistantSerializer

    @extend_schema(summary="Your assistants, by name", operation_id="api_v1_assistants_list",
                   responses=AssistantSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(selectors.assistant_list(user=request.user))
        return self.get_paginated_response(AssistantSerializer(page, many=True).data)

    @extend_schema(
        summary="Make an assistant",
        description="Its `slug` is made from its name and a random part: its link (`url`) and its /v1 model id "
        "(`assistant:<slug>`) hold it, and only people given the link can find it, when `shared`.",
        request=AssistantSerializer, responses={201: AssistantSerializer},
    )
    def post(self, request):
        data = self.validated(request, AssistantSerializer)
        try:
            assistant = services.assistant_create(owner=request.user, **data)
        except services.SharingRefused as exc:
            raise _sharing_refused(exc) from None
        return Response(AssistantSerializer(assistant).data, status=status.HTTP_201_CREATED)


def own_assistant(request, assistant_id: int) -> Assistant:
    """The caller's own assistant; another user's id (or none) is a 404, even for one shared with them."""
    try:
        return selectors.assistant_get(user=request.user, assistant_id=assistant_id)
    except Assistant.DoesNotExist:
        raise exceptions.NotFound("Assistant not found.") from None


def usable_assistant(request, slug: str) -> Assistant:
    """An assistant the caller may chat with (theirs, featured, or shared: its link holds the slug); else 404."""
    try:
        return selectors.assistant_usable(user=request.user, slug=slug)
    except Assistant.DoesNotExist:
        raise exceptions.NotFound("Assistant not found.") from None


class AssistantDetailView(ApiView):
    http_method_names = ["get", "patch", "delete", "options"]

    @extend_schema(summary="One of your assistants", responses=AssistantSerializer)
    def get(self, request, assistant_id):
        return Response(AssistantSerializer(own_assistant(request, assistant_id)).data)

    @extend_schema(summary="Change an assistant", description="Its chats use the change from their next answer.",
                   request=AssistantSerializer, responses=AssistantSerializer)
    def patch(self, request, assistant_id):
        assistant = own_assistant(request, assistant_id)
        data = self.validated(request, AssistantSerializer, partial=True)
        try:
            assistant = services.assistant_update(assistant=assistant, **data)
        except services.SharingRefused as exc:
            raise _sharing_refused(exc) from None
        return Response(AssistantSerializer(assistant).data)

    @extend_schema(summary="Delete an assistant", description="Its chats stay, without its instructions.",
                   responses={204: None})
    def delete(self, request, assistant_id):
        services.assistant_delete(assistant=own_assistant(request, assistant_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class AvailableAssistantListView(ApiView, generics.GenericAPIView):
    serializer_class = UsableAssistantSerializer

    @extend_schema(
        summary="The assistants you may use",
        description="Yours, featured ones, those shared with your groups, and ones shared by link you have chatted "
        "with (as listed by GET /v1/models).",
        operation_id="api_v1_assistants_available_list", responses=UsableAssistantSerializer(many=True),
    )
    def get(self, request):
        page = self.paginate_queryset(selectors.assistants_listed(user=request.user))
        return self.get_paginated_response(
            UsableAssistantSerializer(page, many=True, context={"request": request}).data
        )


class UsableAssistantView(ApiView):
    @extend_schema(summary="An assistant you may use, by its slug (its link)", responses=UsableAssistantSerializer)
    def get(self, request, slug):
        return Response(UsableAssistantSerializer(usable_assistant(request, slug), context={"request": request}).data)


class AssistantChatView(ApiView):
    @extend_schema(
        summary="Start a chat with an assistant",
        description="A new conversation with the assistant's model and tools, its instructions in the system prompt; "
        "send its messages to `/api/v1/conversations/{id}/turns/`.",
        request=None, responses={201: AssistantChatSerializer},
    )
    def post(self, request, slug):
        assistant = usable_assistant(request, slug)
        conversation = conversation_create(
            owner=request.user, source=Conversation.Source.API, **assistant.chat_fields()
        )
        return Response(AssistantChatSerializer(conversation).data, status=status.HTTP_201_CREATED)
