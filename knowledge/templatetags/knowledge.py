"""The chat settings' knowledge bases: the user's bases, and which of them the chat has."""

from django import template
from django.db.models import Exists, OuterRef, Value

from knowledge.models import KnowledgeBase

register = template.Library()


@register.simple_tag
def knowledge_choices(user, conversation) -> list[tuple]:
    """(base, attached) for each of the user's bases, in one query; attached is False for a chat not yet created."""
    attached = Exists(KnowledgeBase.conversations.through.objects.filter(
        knowledgebase_id=OuterRef("pk"), conversation_id=conversation.pk
    )) if conversation else Value(False)
    return [(base, base.attached) for base in KnowledgeBase.objects.for_user(user).annotate(attached=attached)]
