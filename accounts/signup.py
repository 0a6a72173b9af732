"""Who may create an account (SIGNUP_MODE), for the sign-up form and a first single sign-on alike."""

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import Invite, User


class SignupRefused(Exception):
    """A sign-up the mode does not allow; the message tells the person signing up why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def email_domain_refusal(email: str) -> str | None:
    """Why SIGNUP_MODE=domain refuses this address, or None. The domain after the last @, exactly (no subdomains)."""
    if settings.SIGNUP_MODE != "domain":
        return None
    domain = email.rpartition("@")[2].lower()
    if domain in settings.SIGNUP_ALLOWED_DOMAINS:
        return None
    return _("Sign-up is limited to e-mail addresses at %(domains)s.") % {
        "domains": ", ".join(settings.SIGNUP_ALLOWED_DOMAINS)
    }


def invite_refusal(token: str | None) -> str | None:
    """Why SIGNUP_MODE=invite refuses a sign-up with this invite token (or none), or None."""
    if settings.SIGNUP_MODE != "invite":
        return None
    if not token:
        return _("Sign-up here is by invitation only: ask an administrator for an invite link.")
    if not Invite.objects.usable().filter(token=token).exists():
        return _("This invite link has expired or has been used up: ask an administrator for a new one.")
    return None


@transaction.atomic
def account_create(user: User, *, invite_token: str | None = None) -> User:
    """Save the new, unsaved `user` as SIGNUP_MODE says: refused (SignupRefused), waiting for approval (inactive,
    `approval_pending`), or active. An invite's use is taken in the same transaction as the account."""
    refusal = email_domain_refusal(user.email) or invite_refusal(invite_token)
    if refusal:
        raise SignupRefused(refusal)
    if settings.SIGNUP_MODE == "invite":
        invite = Invite.objects.redeem(invite_token or "")
        if invite is None:  # its last use went to a sign-up running beside this one
            raise SignupRefused(
                _("This invite link has expired or has been used up: ask an administrator for a new one.")
            )
        user.signup_invite = invite
    if settings.SIGNUP_MODE == "approval":
        user.is_active = False
        user.approval_pending = True
    user.save()
    return user
