"""Shapes of the knowledge API: bases, documents (with indexing progress), passages, a chat's attached bases."""

from django.urls import reverse
from rest_framework import serializers

from chatsite.api.fields import TextField
from knowledge.models import Document, KnowledgeBase, Passage


class KnowledgeBaseSerializer(serializers.ModelSerializer):
    name = TextField(max_length=100, help_text="Shown in the Knowledge page and a chat's settings.")
    description = TextField(max_length=1_000, allow_blank=True, required=False,
                            help_text="What the documents are about (for you; the model does not read it).")
    document_count = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = KnowledgeBase
        fields = ("id", "name", "description", "document_count", "created_at", "updated_at")
        read_only_fields = ("id", "document_count", "created_at", "updated_at")


class DocumentSerializer(serializers.ModelSerializer):
    base_id = serializers.IntegerField(read_only=True)
    progress = serializers.IntegerField(source="progress_percent", read_only=True,
                                        help_text="Percent of the pages indexed (100 when ready).")
    passages_url = serializers.SerializerMethodField()

    class Meta:
        model = Document
        fields = ("id", "base_id", "name", "content_type", "size", "status", "error", "pages_total", "pages_done",
                  "progress", "passage_count", "created_at", "indexed_at", "passages_url")
        read_only_fields = fields
        extra_kwargs = {
            "status": {"help_text": "queued, then indexing (pages_done of pages_total), then ready or failed."},
            "error": {"help_text": "Why indexing failed (failed only)."},
        }

    def get_passages_url(self, document) -> str:
        return reverse("api_knowledge_passage_list", args=[document.pk])


class DocumentUploadSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True, max_length=255)


class PassageSerializer(serializers.ModelSerializer):
    document_id = serializers.IntegerField(read_only=True)
    document_name = serializers.CharField(source="document.name", read_only=True)

    class Meta:
        model = Passage
        fields = ("id", "document_id", "document_name", "ordinal", "page", "start", "end", "text")
        read_only_fields = fields


class ConversationKnowledgeSerializer(serializers.Serializer):
    knowledge_bases = serializers.ListField(
        child=serializers.IntegerField(min_value=1), max_length=100,
        help_text="The ids of your knowledge bases this chat's answers search (the list replaces the current one).",
    )
