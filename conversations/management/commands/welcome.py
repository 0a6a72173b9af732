"""Print the first-run message of `make run`: where chatsite is, which model answers, what to do next."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import connection

from conversations import model_server


class Command(BaseCommand):
    help = "Explain how this chatsite is set up and what to do next."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000/")

    def handle(self, *args, url, **options):
        if settings.LLM_BACKEND == "local":
            path = model_server.model_path()
            model = (
                f"the embedded local model {settings.LOCAL_MODEL_NAME} ({path or 'NOT FOUND: run make install'}),\n"
                f"             in its own process on 127.0.0.1:{settings.LOCAL_MODEL_PORT}, restarted if it stops"
            )
        else:
            model = f"{settings.OPENAI_MODEL} at {settings.OPENAI_BASE_URL or 'https://api.openai.com/v1'}"
        has_admin = get_user_model().objects.filter(is_superuser=True).exists()
        lines = [
            "",
            "chatsite is starting.",
            f"  Open:      {url}  (sign up there, or log in)",
            f"  Database:  {connection.vendor} ({connection.settings_dict['NAME']})",
            f"  Answers:   {model}",
            "",
            "Next steps:",
        ]
        if not has_admin:
            lines.append("  - Create an admin account for /admin/:  make superuser")
        lines += [
            "  - Use OpenAI or any OpenAI-compatible server (vLLM, Ollama, llama.cpp server): add to .env",
            "        OPENAI_API_KEY=sk-...            (OpenAI)",
            "        OPENAI_BASE_URL=http://host:port/v1   OPENAI_MODEL=<model name>   (other servers)",
            "    then restart `make run`. Every setting is listed in README.md and .env.example.",
            "",
        ]
        self.stdout.write("\n".join(lines))
