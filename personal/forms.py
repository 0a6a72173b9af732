"""The personalization page's forms."""

from django import forms
from django.utils.translation import gettext_lazy as _

from personal.models import MAX_INSTRUCTIONS_CHARS, MAX_MEMORY_CHARS, MAX_PROMPT_CHARS


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


class PromptForm(forms.Form):
    command = forms.SlugField(
        label=_("Command"), max_length=40, help_text=_("Type / and this in the message box to insert the prompt.")
    )
    title = forms.CharField(label=_("Title"), max_length=100)
    content = forms.CharField(
        label=_("Prompt"), max_length=MAX_PROMPT_CHARS, strip=False, widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Write {{name}} for a blank you fill in before sending."),
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "prompt_%s")
        super().__init__(*args, **kwargs)
