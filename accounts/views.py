"""Sign up, profile (API keys, usage). Log in/out and passwords use Django's own auth views."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.addresses import client_ip_address
from accounts.forms import ApiKeyCreateForm, SignUpForm
from accounts.models import ApiKey
from conversations.selectors import tokens_used_today


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


def signup(request):
    if request.user.is_authenticated:
        return redirect(settings.LOGIN_REDIRECT_URL)
    if request.method == "POST" and not _signup_allowed(request):
        refused = _("Too many sign-up attempts from your network. Try again in an hour.")
        return render(request, "registration/signup.html", {"form": SignUpForm(), "refused": refused}, status=429)
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(settings.LOGIN_REDIRECT_URL)
    return render(request, "registration/signup.html", {"form": form})


@login_required
def profile(request):
    used = tokens_used_today(request.user)
    quota = settings.CHAT_DAILY_TOKEN_QUOTA
    context = {
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
    form = ApiKeyCreateForm(request.POST)
    if form.is_valid():
        _key, raw = ApiKey.generate(user=request.user, name=form.cleaned_data["name"])
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
