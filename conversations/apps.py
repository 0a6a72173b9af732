from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"
    verbose_name = "Conversations"

    def ready(self):
        from conversations import attachments, checks  # noqa: F401 (the deploy checks; attachment files' cleanup)
