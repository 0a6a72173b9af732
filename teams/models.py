"""Groups' policies (which models, how many tokens a day, which features), per-user overrides, and the audit log."""

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Feature(models.TextChoices):
    """What a group may be allowed or refused, beyond chatting itself."""

    SHARE_LINKS = "share_links", _("Share links")
    FILE_UPLOADS = "file_uploads", _("File uploads")
    TEMPORARY_CHATS = "temporary_chats", _("Temporary chats")
    API_KEYS = "api_keys", _("API keys")
    SERVER_TOOLS = "server_tools", _("Server tools")
    # Kinds of server tool, each also behind SERVER_TOOLS (teams.policy): the web, and the operator's MCP servers.
    WEB_SEARCH = "web_search", _("Web search")
    MCP_TOOLS = "mcp_tools", _("MCP tools")


class GroupPolicy(models.Model):
    """What the members of one group may use. A user in several groups gets the most generous of each."""

    group = models.OneToOneField(Group, on_delete=models.CASCADE, primary_key=True, related_name="policy")
    allowed_models = models.JSONField(
        default=list, blank=True,
        help_text="Model names the members may use (a JSON list); empty: every model the site offers.",
    )
    daily_token_budget = models.PositiveBigIntegerField(
        default=0, help_text="Tokens each member may use per day; 0: no limit.",
    )
    share_links = models.BooleanField(default=True, help_text="Members may make share links.")
    file_uploads = models.BooleanField(default=True, help_text="Members may attach files.")
    temporary_chats = models.BooleanField(default=True, help_text="Members may start temporary chats.")
    api_keys = models.BooleanField(default=True, help_text="Members may create API keys.")
    server_tools = models.BooleanField(
        default=True,
        help_text="Members' answers may use server tools (calculator, memory, knowledge search...): without it, "
        "none, whatever the two switches below say.",
    )
    web_search = models.BooleanField(
        default=True, help_text="With server tools: members may turn on web search in their chats.",
    )
    mcp_tools = models.BooleanField(
        "MCP tools", default=True,
        help_text="With server tools: members may enable the tools of the site's MCP servers.",
    )

    class Meta:
        verbose_name = _("group policy")
        verbose_name_plural = _("group policies")

    def __str__(self) -> str:
        return f"Policy of {self.group}"

    def features(self) -> frozenset[str]:
        """The switches that are on, as set (teams.policy decides what they allow together)."""
        return frozenset(feature for feature in Feature.values if getattr(self, feature))


class UserPolicy(models.Model):
    """A per-user override of the budget the user's groups give."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="policy_override"
    )
    daily_token_budget = models.PositiveBigIntegerField(
        help_text="Tokens this user may use per day, whatever their groups say; 0: no limit.",
    )

    class Meta:
        verbose_name = _("user budget override")

    def __str__(self) -> str:
        return f"Budget override of {self.user}"


class AuditEvent(models.Model):
    """An administrative change the admin's own LogEntry does not record: group membership and permissions,
    staff and superuser flags, deactivation, API key revocations, whoever made them (admin, shell, API)."""

    class Action(models.TextChoices):
        GROUP_MEMBERS_CHANGED = "group_members", _("Group membership changed")
        PERMISSIONS_CHANGED = "permissions", _("Permissions changed")
        ROLE_CHANGED = "role", _("Staff or superuser flag changed")
        USER_DEACTIVATED = "deactivated", _("User deactivated")
        USER_REACTIVATED = "reactivated", _("User reactivated")
        KEY_REVOKED = "key_revoked", _("API key revoked")
        POLICY_CHANGED = "policy", _("Group policy changed")

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Who made the change (empty: a command, or an account since deleted).",
    )
    action = models.CharField(max_length=20, choices=Action.choices)
    target_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The user the change is about, if any.",
    )
    target = models.CharField(max_length=200, help_text="What changed, as it was named then.")
    detail = models.TextField(blank=True, help_text="What was added, removed or set.")

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("audit event")

    def __str__(self) -> str:
        return f"{self.get_action_display()}: {self.target}"
