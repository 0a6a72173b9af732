"""Queue the embedding of every ready document whose passages lack a vector of KNOWLEDGE_EMBEDDINGS_MODEL: after the
model is changed, or after an outage of the embeddings model left documents with full-text search only."""

from django.core.management.base import BaseCommand, CommandError

from knowledge.vectors import documents_to_embed, embed_document, embeddings_model


class Command(BaseCommand):
    help = "Queue the embedding of the passages that have no vector of KNOWLEDGE_EMBEDDINGS_MODEL (on the task queue)."

    def handle(self, *args, **options):
        if not embeddings_model():
            raise CommandError("KNOWLEDGE_EMBEDDINGS_MODEL is not set: knowledge search is full-text only.")
        document_ids = list(documents_to_embed())
        for document_id in document_ids:
            embed_document.enqueue(document_id)
        self.stdout.write(f"Queued {len(document_ids)} document(s) for embedding with {embeddings_model()}.")
