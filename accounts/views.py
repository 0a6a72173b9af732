"""Sign up (as SIGNUP_MODE says), log in (with single sign-on), profile (API keys, usage). Log out and passwords
use Django's own auth views."""

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache
from django.core.exceptions import NON_FIELD_ERRORS
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.addresses import client_ip_address
from accounts.forms import ApiKeyCreateForm, LoginForm, SignUpForm
from accounts.models import ApiKey
from accounts.oidc import oidc_enabled
from accounts.signup import SignupRefused, account_create, invite_refusal
from conversations.selectors import tokens_used_today
from teams.policy import Feature, policy_for


def _signup_allowed(request) -> bool:
    """At most SIGNUP_ATTEMPTS_PER_HOUR sign-up submissions per client address (atomic in the shared cache):
    a username form must say when a name is taken, so probing for names is made slow instead."""
    key = f"signup:attempts:{client_ip_address(request)}"
    cache.add(key, 0, timeout=3600)
    try:
        attempts = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=3600)
        attempts = 1
    return attempts <= settings.SIGNUP_ATTEMPTS_PER_HOUR


def sign_in_options() -> dict:
    """What the log-in and sign-up pages offer: single sign-on (and under which name), passwords or not."""
    return {
        "sso_enabled": oidc_enabled(),
        "sso_provider_name": settings.OIDC_PROVIDER_NAME,
        "sso_only": settings.SSO_ONLY,
    }


def signup(request):
    if request.user.is_authenticated:
        return redirect(settings.LOGIN_REDIRECT_URL)
    invite = request.POST.get("invite") or request.GET.get("invite") or None
    context = {**sign_in_options(), "invite": invite, "mode": settings.SIGNUP_MODE}
    refused = (
        _("Sign-up is through %(provider)s only.") % {"provider": settings.OIDC_PROVIDER_NAME}
        if settings.SSO_ONLY else invite_refusal(invite)
    )
    if refused:
        status = 403 if request.method == "POST" else 200
        return render(request, "registration/signup.html", {**context, "refused": refused, "closed": True},
                      status=status)
    if request.method == "POST" and not _signup_allowed(request):
        refused = _("Too many sign-up attempts from your network. Try again in an hour.")
        return render(request, "registration/signup.html",
                      {**context, "form": SignUpForm(initial={"invite": invite}), "refused": refused}, status=429)
    form = SignUpForm(request.POST or None, initial={"invite": invite})
    if request.method == "POST" and form.is_valid():
        try:
            user = account_create(form.save(commit=False), invite_token=invite)
        except SignupRefused as refusal:
            return render(request, "registration/signup.html", {**context, "form": form, "refused": refusal.message},
                          status=403)
        if user.approval_pending:
            request.session["pending_username"] = user.username
            return redirect("signup_pending")
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(settings.LOGIN_REDIRECT_URL)
    return render(request, "registration/signup.html", {**context, "form": form})


def signup_pending(request):
    """The page a new account waiting for approval lands on (from the sign-up form, a log-in or single sign-on)."""
    return render(request, "registration/signup_pending.html", {"username": request.session.get("pending_username")})


class LoginView(auth_views.LoginView):
    """Django's log-in page, with the single sign-on button; with SSO_ONLY a password is refused before anything
    checks it (no failed attempt is counted towards a lockout either)."""

    form_class = LoginForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), **sign_in_options()}

    def post(self, request, *args, **kwargs):
        if settings.SSO_ONLY:
            refused = _("Password log-in is turned off: log in with %(provider)s.") % {
                "provider": settings.OIDC_PROVIDER_NAME
            }
            return self.render_to_response(self.get_context_data(refused=refused), status=403)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        if form.has_error(NON_FIELD_ERRORS, "pending"):
            self.request.session["pending_username"] = form.cleaned_data.get("username")
            return redirect("signup_pending")
        return super().form_invalid(form)


def admin_login(request, extra_context=None):
    """The admin's log-in page; with SSO_ONLY, the site's (the provider's button), which comes back to the admin."""
    if settings.SSO_ONLY:
        return redirect_to_login(request.GET.get("next") or reverse("admin:index"))
    return admin.site.login(request, extra_context)


class PasswordResetView(auth_views.PasswordResetView):
    """Django's password reset; with SSO_ONLY there is no password to reset, and the page says so."""

    def dispatch(self, request, *args, **kwargs):
        if settings.SSO_ONLY:
            refused = _("Passwords are turned off here: log in with %(provider)s.") % {
                "provider": settings.OIDC_PROVIDER_NAME
            }
            return render(request, "registration/login.html", {**sign_in_options(), "refused": refused}, status=403)
        return super().dispatch(request, *args, **kwargs)


@login_required
def profile(request):
    used = tokens_used_today(request.user)
    policy = policy_for(request.user)
    quota = policy.daily_token_budget
    context = {
        "may_create_keys": policy.allows(Feature.API_KEYS),
        "api_keys": ApiKey.objects.for_user(request.user),
        "key_form": ApiKeyCreateForm(),
        "new_key": request.session.pop("new_api_key", None),
        "tokens_today": used,
        "quota": quota,
        "quota_left": max(0, quota - used) if quota else None,
    }
    return render(request, "accounts/profile.html", context)


@login_required
@require_POST
def api_key_create(request):
    if not policy_for(request.user).allows(Feature.API_KEYS):
        messages.error(request, _("Your account may not create API keys."))
        return redirect("profile")
    form = ApiKeyCreateForm(request.POST)
    if form.is_valid():
        _key, raw = ApiKey.generate(
            user=request.user, name=form.cleaned_data["name"],
            store_chats=not form.cleaned_data["keep_out_of_history"],
        )
        # Shown once on the next page view, then gone from the session.
        request.session["new_api_key"] = raw
        messages.success(request, _("API key created."))
    return redirect("profile")


@login_required
@require_POST
def api_key_revoke(request, key_id: int):
    key = get_object_or_404(ApiKey.objects.for_user(request.user), pk=key_id)
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        messages.success(request, _("API key revoked."))
    return redirect("profile")
