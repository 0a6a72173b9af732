"""The Knowledge page's form."""

from django import forms
from django.utils.translation import gettext_lazy as _


class KnowledgeBaseForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    description = forms.CharField(
        label=_("Description"), required=False, max_length=1_000, widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("What the documents are about (for you; the model does not read it)."),
    )
