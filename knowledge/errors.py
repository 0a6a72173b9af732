"""Refusals of the knowledge app, in the API's error shape (a ChatError: code, message, status)."""

from conversations.errors import ChatError


class KnowledgeRefused(ChatError):
    """A limit reached (bases per user, documents per base) or a request that cannot be done, with the reason."""

    code = "knowledge_refused"
    status = 400
    message = "This cannot be done with your knowledge bases."
