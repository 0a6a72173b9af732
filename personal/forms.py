"""The personalization page's forms."""

from django import forms
from django.utils.translation import gettext_lazy as _

from conversations.selectors import models_offered
from knowledge.models import KnowledgeBase
from personal.models import (
    ASSISTANT_TOOLS,
    MAX_ASSISTANT_INSTRUCTIONS_CHARS,
    MAX_INSTRUCTIONS_CHARS,
    MAX_MEMORY_CHARS,
    MAX_PROMPT_CHARS,
    MAX_STARTER_CHARS,
    MAX_STARTERS,
    Assistant,
    Prompt,
)


class InstructionsForm(forms.Form):
    about_me = forms.CharField(
        label=_("What should chatsite know about you?"), required=False, max_length=MAX_INSTRUCTIONS_CHARS,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    answer_style = forms.CharField(
        label=_("How should chatsite answer?"), required=False, max_length=MAX_INSTRUCTIONS_CHARS,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    memory_enabled = forms.BooleanField(
        label=_("Use memory"), required=False,
        help_text=_("Give your memories to the model, and let it save new ones when you ask it to remember."),
    )


class MemoryForm(forms.Form):
    """Its ids start with memory_ (the page also has the prompt form, whose fields have the same names)."""

    content = forms.CharField(label=_("Memory"), max_length=MAX_MEMORY_CHARS, strip=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "memory_%s")
        super().__init__(*args, **kwargs)


def _ids_field(label, help_text) -> forms.ModelMultipleChoiceField:
    """Checkboxes of some of the user's rows (their groups, their knowledge bases), set per user in __init__."""
    return forms.ModelMultipleChoiceField(
        label=label, help_text=help_text, required=False, queryset=None, widget=forms.CheckboxSelectMultiple,
    )


def _ids(rows) -> list[int]:
    return [row.pk for row in rows]


class PromptForm(forms.Form):
    command = forms.SlugField(
        label=_("Command"), max_length=40, help_text=_("Type / and this in the message box to insert the prompt.")
    )
    title = forms.CharField(label=_("Title"), max_length=100)
    content = forms.CharField(
        label=_("Prompt"), max_length=MAX_PROMPT_CHARS, strip=False, widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Write {{name}} for a blank you fill in before sending."),
    )
    groups = _ids_field(
        _("Share with groups"), _("Members of these groups of yours see it in their / menu; only you may change it."),
    )

    def __init__(self, *args, user, prompt: Prompt | None = None, **kwargs):
        """The form of a new prompt (ids prompt_...), or of `prompt` (ids prompt_<id>_...)."""
        kwargs.setdefault("auto_id", f"prompt_{prompt.pk}_%s" if prompt is not None else "prompt_%s")
        if prompt is not None:
            kwargs.setdefault("initial", {
                "command": prompt.command, "title": prompt.title, "content": prompt.content,
                "groups": _ids(prompt.groups.all()),
            })
        super().__init__(*args, **kwargs)
        groups_field = self.fields["groups"]
        assert isinstance(groups_field, forms.ModelMultipleChoiceField)
        groups_field.queryset = user.groups.order_by("name")
        if not groups_field.queryset.exists():
            del self.fields["groups"]

    def clean_groups(self) -> list[int]:
        return _ids(self.cleaned_data["groups"])


class AssistantForm(forms.Form):
    """An assistant's fields; its ids start with assistant_ (or assistant_<id>_ for an existing one's form)."""

    emoji = forms.CharField(label=_("Emoji"), max_length=16, required=False)
    name = forms.CharField(label=_("Name"), max_length=80)
    instructions = forms.CharField(
        label=_("Instructions"), max_length=MAX_ASSISTANT_INSTRUCTIONS_CHARS, strip=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_("Added to the system prompt of its chats, before your own custom instructions."),
    )
    model = forms.ChoiceField(label=_("Model"), required=False)
    starters = forms.CharField(
        label=_("Starter prompts"), required=False, widget=forms.Textarea(attrs={"rows": 3}),
    )  # its help_text is set per request in __init__: `%` on a lazy string translates it at import, in English
    tools = forms.MultipleChoiceField(
        label=_("Tools"), required=False, choices=list(ASSISTANT_TOOLS.items()), widget=forms.CheckboxSelectMultiple,
    )
    shared = forms.BooleanField(
        label=_("Share by link"), required=False,
        help_text=_("Anyone signed in to this site who has its link may chat with it; only you may change it."),
    )
    groups = _ids_field(
        _("Share with groups"), _("Members of these groups of yours may chat with it; only you may change it."),
    )
    knowledge_bases = _ids_field(
        _("Knowledge bases"),
        _("Its chats search these bases of yours, whoever chats with it: people you share it with get passages of "
          "them."),
    )

    def __init__(self, *args, user, assistant: Assistant | None = None, **kwargs):
        kwargs.setdefault("auto_id", f"assistant_{assistant.pk}_%s" if assistant is not None else "assistant_%s")
        if assistant is not None:
            kwargs.setdefault("initial", {
                "emoji": assistant.emoji, "name": assistant.name, "instructions": assistant.instructions,
                "model": assistant.model, "starters": "\n".join(assistant.starters), "tools": assistant.tools,
                "shared": assistant.shared, "groups": _ids(assistant.groups.all()),
                "knowledge_bases": _ids(assistant.knowledge_bases.all()),
            })
        super().__init__(*args, **kwargs)
        self.fields["starters"].help_text = _("One per line, up to %(count)s: shown in a new chat with it.") % {
            "count": MAX_STARTERS}
        for name, rows in (("groups", user.groups.order_by("name")),
                           ("knowledge_bases", KnowledgeBase.objects.for_user(user))):
            field = self.fields[name]
            assert isinstance(field, forms.ModelMultipleChoiceField)
            field.queryset = rows
            if not rows.exists():  # nothing to choose: no empty list of checkboxes
                del self.fields[name]
        offered = models_offered(user)
        model_field = self.fields["model"]
        assert isinstance(model_field, forms.ChoiceField)
        model_field.choices = [("", _("Site default (%(model)s)") % {"model": offered[0]})] + [
            (name, name) for name in offered[1:]
        ]

    def clean_groups(self) -> list[int]:
        return _ids(self.cleaned_data["groups"])

    def clean_knowledge_bases(self) -> list[int]:
        return _ids(self.cleaned_data["knowledge_bases"])

    def clean_starters(self) -> list[str]:
        starters = [line.strip() for line in self.cleaned_data["starters"].splitlines() if line.strip()]
        if len(starters) > MAX_STARTERS:
            raise forms.ValidationError(_("At most %(count)s starter prompts.") % {"count": MAX_STARTERS})
        if any(len(starter) > MAX_STARTER_CHARS for starter in starters):
            raise forms.ValidationError(
                _("A starter prompt is at most %(count)s characters.") % {"count": MAX_STARTER_CHARS}
            )
        return starters
