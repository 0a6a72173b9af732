"""Errors of the chat engine, in terms a user (and the API's error shape) can use."""


class ChatError(Exception):
    """Base: a code for programs, a short user-safe message, the HTTP status the API answers with."""

    code = "chat_error"
    status = 500
    message = "The answer could not be produced."

    def __init__(self, message: str | None = None, *, retry_after: float | None = None):
        self.message = message or self.message
        self.retry_after = retry_after
        super().__init__(self.message)


class ConversationBusy(ChatError):
    code = "busy"
    status = 409
    message = "An answer is still being written in this conversation. Wait for it or stop it, then retry."


class NothingToRegenerate(ChatError):
    code = "nothing_to_regenerate"
    status = 409
    message = "There is no answer to regenerate in this conversation."


class NothingToContinue(ChatError):
    code = "nothing_to_continue"
    status = 409
    message = "Only an answer that was stopped or cut at its length can be continued."


class NothingToEdit(ChatError):
    code = "nothing_to_edit"
    status = 404
    message = "There is no such message to edit in this conversation."


class OptionRefused(ChatError):
    """A request parameter the configured model backend cannot honour (refused, never silently dropped)."""

    code = "unsupported_parameter"
    status = 400
    message = "This parameter is not supported by the configured model."

    def __init__(self, message: str | None = None, *, param: str):
        self.param = param
        super().__init__(message)


class EmbeddingsUnsupported(ChatError):
    """The configured model backend computes no embeddings (the embedded SmolLM2 server has no embedding model)."""

    code = "embeddings_unsupported"
    status = 400
    message = "The configured model backend has no embeddings."


class ModelNotFound(ChatError):
    """A model the site does not offer to this user: unknown, or not allowed to their groups (the same error)."""

    code = "model_not_found"
    status = 404

    def __init__(self, model: str = "", *, message: str | None = None, retry_after: float | None = None):
        super().__init__(message or f"The model '{model}' does not exist here. See GET /v1/models.")


class FeatureDisabled(ChatError):
    """A feature the user's groups do not allow (teams.policy)."""

    code = "feature_disabled"
    status = 403
    message = "Your account may not use this feature."


class AttachmentRefused(ChatError):
    """A file that cannot be attached or sent (its type, its content, this model), with the reason."""

    code = "attachment_refused"
    status = 400
    message = "This file cannot be attached."


class AttachmentTooLarge(AttachmentRefused):
    code = "attachment_too_large"
    status = 413
    message = "The file is too large."


class QuotaExceeded(ChatError):
    code = "quota_exceeded"
    status = 429
    message = "You have used today's token quota."

    def __init__(self, message: str | None = None, *, retry_after: float | None = None):
        from django.conf import settings

        super().__init__(
            message or f"{self.message} It resets at midnight ({settings.TIME_ZONE} time).", retry_after=retry_after
        )


class SystemPromptTooLong(ChatError):
    """What the model is told before the conversation (the chat's prompt, its project's, its assistant's and the
    user's instructions, their memories) leaves no room in the model's context for the message: refused before any
    model call, the answer stored failed with a message naming the largest parts (services.turns._prepare)."""

    code = "system_prompt_too_long"
    status = 400
    message = "This chat's instructions are too long for the model's context."


class UpstreamError(ChatError):
    """The model could not answer. Subclasses say why; none carries SDK types or secrets."""

    code = "upstream_error"
    status = 502
    message = "The model service returned an error."


class UpstreamUnavailable(UpstreamError):
    code = "upstream_unavailable"
    status = 503
    message = "The model service is unavailable. Try again in a moment."


class UpstreamTimeout(UpstreamError):
    code = "upstream_timeout"
    status = 504
    message = "The model service took too long to answer."


class UpstreamRateLimited(UpstreamError):
    code = "upstream_rate_limited"
    status = 429
    message = "The model service is rate-limiting requests. Try again shortly."


class UpstreamRejected(UpstreamError):
    code = "upstream_rejected"
    status = 502
    message = "The model service rejected the request."


class UpstreamContextTooLong(UpstreamRejected):
    """The model service refused the prompt as longer than the model's context: the site's context budget
    (CHAT_CONTEXT_TOKENS, per model) is larger than the model's. The code is OpenAI's for it."""

    code = "context_length_exceeded"
    message = "The conversation is too long for the model's context window."


class UpstreamMisconfigured(UpstreamError):
    code = "upstream_misconfigured"
    status = 502
    message = "The model service is not configured correctly (check the API key and base URL)."


class UpstreamStreamBroken(UpstreamError):
    code = "upstream_stream_broken"
    status = 502
    message = "The model service stopped in the middle of the answer."


class AnswerInterrupted(ChatError):
    """Nobody writes the answer any more: its worker died, or it was pending past CHAT_STALE_TURN_SECONDS."""

    code = "interrupted"
    status = 503
    message = "The answer was interrupted."


class DatabaseUnavailable(ChatError):
    """The answer could not be stored; the chat is not left stuck (see services.turns._claim_conversation)."""

    code = "database_unavailable"
    status = 503
    message = "The service is briefly unavailable. Please retry in a few seconds."


def error_class(code: str) -> type[ChatError] | None:
    """The error whose `code` this is (a stored answer keeps only its failure's code), or None."""
    pending = [ChatError]
    while pending:
        kind = pending.pop()
        if kind.code == code:
            return kind
        pending.extend(kind.__subclasses__())
    return None
