"""The knowledge API: bases, their documents (upload, indexing status and progress, delete), passages (read, search),
and the bases attached to a chat. Owner only: another user's id is a 404."""

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from chatsite.api.views import ApiView
from conversations.models import Conversation, Project
from conversations.selectors import conversation_get, project_get
from knowledge import search, services
from knowledge.api.serializers import (
    ConversationKnowledgeSerializer,
    DocumentSerializer,
    DocumentUploadSerializer,
    KnowledgeBaseSerializer,
    PassageSerializer,
)
from knowledge.models import Document, KnowledgeBase, Passage


def own_conversation(request, conversation_id) -> Conversation:
    try:
        return conversation_get(user=request.user, conversation_id=conversation_id)
    except Conversation.DoesNotExist:
        raise exceptions.NotFound("Conversation not found.") from None


def own_project(request, project_id: int) -> Project:
    try:
        return project_get(user=request.user, project_id=project_id)
    except Project.DoesNotExist:
        raise exceptions.NotFound("Project not found.") from None


def own_base(request, base_id: int) -> KnowledgeBase:
    try:
        return search.knowledge_base_get(user=request.user, base_id=base_id)
    except KnowledgeBase.DoesNotExist:
        raise exceptions.NotFound("Knowledge base not found.") from None


def own_document(request, document_id: int) -> Document:
    try:
        return search.document_get(user=request.user, document_id=document_id)
    except Document.DoesNotExist:
        raise exceptions.NotFound("Document not found.") from None


class KnowledgeBaseListView(ApiView, generics.GenericAPIView):
    serializer_class = KnowledgeBaseSerializer

    @extend_schema(summary="Your knowledge bases", operation_id="api_v1_knowledge_bases_list",
                   responses=KnowledgeBaseSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(search.knowledge_base_list(user=request.user))
        return self.get_paginated_response(KnowledgeBaseSerializer(page, many=True).data)

    @extend_schema(summary="Create a knowledge base",
                   description="At most KNOWLEDGE_BASES_PER_USER per account (400 `knowledge_refused`).",
                   request=KnowledgeBaseSerializer, responses={201: KnowledgeBaseSerializer})
    def post(self, request):
        data = self.validated(request, KnowledgeBaseSerializer)
        base = services.knowledge_base_create(owner=request.user, **data)
        return Response(KnowledgeBaseSerializer(base).data, status=status.HTTP_201_CREATED)


class KnowledgeBaseDetailView(ApiView):
    http_method_names = ["get", "patch", "delete", "options"]

    @extend_schema(summary="One of your knowledge bases", responses=KnowledgeBaseSerializer)
    def get(self, request, base_id):
        return Response(KnowledgeBaseSerializer(own_base(request, base_id)).data)

    @extend_schema(summary="Rename or describe a knowledge base", request=KnowledgeBaseSerializer,
                   responses=KnowledgeBaseSerializer)
    def patch(self, request, base_id):
        base = own_base(request, base_id)
        data = self.validated(request, KnowledgeBaseSerializer, partial=True)
        return Response(KnowledgeBaseSerializer(services.knowledge_base_update(base=base, **data)).data)

    @extend_schema(summary="Delete a knowledge base with its documents", responses={204: None})
    def delete(self, request, base_id):
        services.knowledge_base_delete(base=own_base(request, base_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class DocumentListView(ApiView, generics.GenericAPIView):
    serializer_class = DocumentSerializer
    parser_classes = [MultiPartParser]

    def max_body_bytes(self) -> int:
        return settings.KNOWLEDGE_DOCUMENT_MAX_BYTES + 64 * 1024

    @extend_schema(summary="A knowledge base's documents, with their indexing status",
                   operation_id="api_v1_knowledge_bases_documents_list", responses=DocumentSerializer(many=True))
    def get(self, request, base_id):
        page = self.paginate_queryset(search.document_list(base=own_base(request, base_id)))
        return self.get_paginated_response(DocumentSerializer(page, many=True).data)

    @extend_schema(
        summary="Upload a document (multipart/form-data, field `file`)",
        description=(
            "PDF, DOCX, Markdown, HTML or text, checked like an attachment and counted in your storage quota. "
            "It is indexed in the background: `status` goes queued → indexing (`pages_done` of `pages_total`) → "
            "ready (or failed, with `error`). Limits: KNOWLEDGE_DOCUMENTS_PER_BASE (400 `knowledge_refused`), "
            "KNOWLEDGE_DOCUMENT_MAX_BYTES (413)."
        ),
        request={"multipart/form-data": DocumentUploadSerializer},
        responses={201: DocumentSerializer},
    )
    def post(self, request, base_id):
        base = own_base(request, base_id)
        serializer = DocumentUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        document = services.document_upload(base=base, upload=serializer.validated_data["file"])
        return Response(DocumentSerializer(document).data, status=status.HTTP_201_CREATED)


class DocumentDetailView(ApiView):
    http_method_names = ["get", "delete", "options"]

    @extend_schema(summary="A document: its indexing status and progress", responses=DocumentSerializer)
    def get(self, request, document_id):
        return Response(DocumentSerializer(own_document(request, document_id)).data)

    @extend_schema(summary="Delete a document (its passages and file; its bytes leave your quota)",
                   responses={204: None})
    def delete(self, request, document_id):
        services.document_delete(document=own_document(request, document_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class PassageListView(ApiView, generics.GenericAPIView):
    serializer_class = PassageSerializer

    @extend_schema(summary="A document's passages, in order", operation_id="api_v1_knowledge_documents_passages_list",
                   responses=PassageSerializer(many=True))
    def get(self, request, document_id):
        document = own_document(request, document_id)
        page = self.paginate_queryset(Passage.objects.filter(document=document).select_related("document"))
        return self.get_paginated_response(PassageSerializer(page, many=True).data)


class PassageDetailView(ApiView):
    @extend_schema(summary="One passage", responses=PassageSerializer)
    def get(self, request, passage_id):
        try:
            passage = search.passage_get(user=request.user, passage_id=passage_id)
        except Passage.DoesNotExist:
            raise exceptions.NotFound("Passage not found.") from None
        return Response(PassageSerializer(passage).data)


class KnowledgeSearchView(ApiView):
    @extend_schema(
        summary="Search a knowledge base's passages",
        description="Full-text (any of the words, best first), as an answer's retrieval step searches.",
        parameters=[OpenApiParameter("q", OpenApiTypes.STR, required=True, description="The words to find."),
                    OpenApiParameter("limit", OpenApiTypes.INT, description="At most this many (1-50, default 10).")],
        responses=PassageSerializer(many=True),
    )
    def get(self, request, base_id):
        base = own_base(request, base_id)
        query = request.query_params.get("q", "")[:1_000]
        raw_limit = request.query_params.get("limit", "10")
        if not raw_limit.isascii() or not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 50:
            raise exceptions.ValidationError({"limit": ["A whole number from 1 to 50."]})
        passages = search.passages_search(owner_ids=[request.user.pk], base_ids=[base.pk], query=query,
                                          limit=int(raw_limit))
        return Response(PassageSerializer(passages, many=True).data)


class ConversationKnowledgeView(ApiView):
    http_method_names = ["get", "put", "options"]

    @extend_schema(summary="The knowledge bases a chat's answers search", responses=ConversationKnowledgeSerializer)
    def get(self, request, conversation_id):
        conversation = own_conversation(request, conversation_id)
        ids = KnowledgeBase.objects.filter(owner=request.user, conversations=conversation).values_list("pk", flat=True)
        return Response({"knowledge_bases": sorted(ids)})

    @extend_schema(summary="Attach (and detach) knowledge bases to a chat",
                   description="The list replaces the chat's bases; `[]` detaches them all. An id that is not one "
                   "of your bases is a 400 (`knowledge_refused`).",
                   request=ConversationKnowledgeSerializer, responses=ConversationKnowledgeSerializer)
    def put(self, request, conversation_id):
        conversation = own_conversation(request, conversation_id)
        data = self.validated(request, ConversationKnowledgeSerializer)
        bases = services.conversation_knowledge_set(conversation=conversation, base_ids=data["knowledge_bases"])
        return Response({"knowledge_bases": sorted(base.pk for base in bases)})


class ProjectDocumentListView(ApiView, generics.GenericAPIView):
    """A project's files, and a file uploaded straight into the project (its own base, made on the first upload)."""

    serializer_class = DocumentSerializer
    parser_classes = [MultiPartParser]

    def max_body_bytes(self) -> int:
        return settings.KNOWLEDGE_DOCUMENT_MAX_BYTES + 64 * 1024

    @extend_schema(summary="A project's files: the documents of its knowledge bases, with their indexing status",
                   operation_id="api_v1_projects_documents_list", responses=DocumentSerializer(many=True))
    def get(self, request, project_id):
        page = self.paginate_queryset(Document.objects.of_project(own_project(request, project_id)))
        return self.get_paginated_response(DocumentSerializer(page, many=True).data)

    @extend_schema(
        summary="Upload a file into a project (multipart/form-data, field `file`)",
        description=(
            "It goes into the project's own knowledge base (yours, attached to the project and named after it, made "
            "on the first upload; its `base_id` says which), checked, counted and indexed as any document (see "
            "POST /api/v1/knowledge-bases/{id}/documents/)."
        ),
        request={"multipart/form-data": DocumentUploadSerializer},
        responses={201: DocumentSerializer},
    )
    def post(self, request, project_id):
        project = own_project(request, project_id)
        serializer = DocumentUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        document = services.project_document_upload(project=project, upload=serializer.validated_data["file"])
        return Response(DocumentSerializer(document).data, status=status.HTTP_201_CREATED)


class ProjectKnowledgeView(ApiView):
    """A project's files: the knowledge bases every chat in the project searches (besides each chat's own)."""

    http_method_names = ["get", "put", "options"]

    @extend_schema(summary="The knowledge bases of a project", responses=ConversationKnowledgeSerializer)
    def get(self, request, project_id):
        project = own_project(request, project_id)
        ids = KnowledgeBase.objects.filter(owner=request.user, projects=project).values_list("pk", flat=True)
        return Response({"knowledge_bases": sorted(ids)})

    @extend_schema(summary="Set a project's knowledge bases",
                   description="The list replaces the project's bases; `[]` detaches them all. Every chat in the "
                   "project searches them. An id that is not one of your bases is a 400 (`knowledge_refused`).",
                   request=ConversationKnowledgeSerializer, responses=ConversationKnowledgeSerializer)
    def put(self, request, project_id):
        project = own_project(request, project_id)
        data = self.validated(request, ConversationKnowledgeSerializer)
        bases = services.project_knowledge_set(project=project, base_ids=data["knowledge_bases"])
        return Response({"knowledge_bases": sorted(base.pk for base in bases)})
