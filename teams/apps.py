from django.apps import AppConfig


class TeamsConfig(AppConfig):
    name = "teams"
    verbose_name = "Teams"

    def ready(self) -> None:
        from teams import audit  # noqa: F401 (connects the audit log's signal receivers)
