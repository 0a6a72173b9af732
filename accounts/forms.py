"""Sign-up, log-in and API key forms."""

from django import forms
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from accounts.signup import email_domain_refusal


class SignUpForm(UserCreationForm):
    email = forms.EmailField(label=_("Email"), required=True)
    invite = forms.CharField(widget=forms.HiddenInput, required=False)

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")

    def clean_email(self):
        email = self.cleaned_data["email"]
        refusal = email_domain_refusal(email)
        if refusal:
            raise ValidationError(refusal, code="domain")
        return email


class LoginForm(AuthenticationForm):
    """Django's log-in form, which says so when the right password belongs to an account still waiting for
    approval (the backends refuse inactive accounts, so it would otherwise read as a wrong password)."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "pending": _("Your account is waiting for an administrator's approval. You can log in once it is approved."),
    }

    def clean(self):
        try:
            return super().clean()
        except ValidationError:
            username, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
            pending = User.objects.filter(username=username, approval_pending=True).first()
            if pending is not None and password and pending.check_password(password):
                raise ValidationError(self.error_messages["pending"], code="pending") from None
            raise


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    keep_out_of_history = forms.BooleanField(
        label=_("Keep its chats out of my history"), required=False,
        help_text=_("For tools that cannot send store: false: calls are answered and counted, their chats are "
                    "temporary (not listed, deleted later)."),
    )
