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


class UpstreamMisconfigured(UpstreamError):
    code = "upstream_misconfigured"
    status = 502
    message = "The model service is not configured correctly (check the API key and base URL)."


class UpstreamStreamBroken(UpstreamError):
    code = "upstream_stream_broken"
    status = 502
    message = "The model service stopped in the middle of the answer."


class DatabaseUnavailable(ChatError):
    """The answer could not be stored; the chat is not left stuck (see services.turns._claim_conversation)."""

    code = "database_unavailable"
    status = 503
    message = "The service is briefly unavailable. Please retry in a few seconds."
