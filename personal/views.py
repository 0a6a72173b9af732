"""The personalization page: custom instructions, the memory switch, and memories to add, edit and delete."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from personal import selectors, services
from personal.forms import InstructionsForm, MemoryForm, PromptForm
from personal.models import Memory, Prompt


def _own_memory(request, memory_id: int) -> Memory:
    try:
        return selectors.memory_get(user=request.user, memory_id=memory_id)
    except Memory.DoesNotExist:
        raise Http404 from None


def _own_prompt(request, prompt_id: int) -> Prompt:
    try:
        return selectors.prompt_get(user=request.user, prompt_id=prompt_id)
    except Prompt.DoesNotExist:
        raise Http404 from None


def _page(request, *, instructions_form=None, memory_form=None, prompt_form=None, status=200):
    personalization = selectors.personalization_get(user_id=request.user.pk)
    context = {
        "instructions_form": instructions_form or InstructionsForm(initial={
            "about_me": personalization.about_me, "answer_style": personalization.answer_style,
            "memory_enabled": personalization.memory_enabled,
        }),
        "memory_form": memory_form or MemoryForm(),
        "memories": selectors.memory_list(user=request.user),
        "memory_enabled": personalization.memory_enabled,
        "prompt_form": prompt_form or PromptForm(),
        "prompts": selectors.prompt_list(user=request.user),
    }
    return render(request, "personal/settings.html", context, status=status)


@login_required
def personal_settings(request):
    if request.method != "POST":
        return _page(request)
    form = InstructionsForm(request.POST)
    if not form.is_valid():
        return _page(request, instructions_form=form, status=400)
    services.personalization_update(user=request.user, **form.cleaned_data)
    messages.success(request, _("Saved. New answers use these settings."))
    return redirect("personal:settings")


@login_required
@require_POST
def memory_add(request):
    form = MemoryForm(request.POST)
    if not form.is_valid():
        return _page(request, memory_form=form, status=400)
    services.memory_create(owner=request.user, content=form.cleaned_data["content"])
    messages.success(request, _("Memory added."))
    return redirect("personal:settings")


@login_required
@require_POST
def memory_edit(request, memory_id: int):
    memory = _own_memory(request, memory_id)
    form = MemoryForm(request.POST)
    if form.is_valid():
        services.memory_update(memory=memory, content=form.cleaned_data["content"])
        messages.success(request, _("Memory changed."))
    else:
        messages.error(request, _("A memory must have text, at most 500 characters."))
    return redirect("personal:settings")


@login_required
@require_POST
def memory_delete(request, memory_id: int):
    services.memory_delete(memory=_own_memory(request, memory_id))
    messages.success(request, _("Memory deleted."))
    return redirect("personal:settings")


@login_required
@require_POST
def prompt_add(request):
    form = PromptForm(request.POST)
    if form.is_valid():
        try:
            services.prompt_create(owner=request.user, **form.cleaned_data)
        except services.PromptRefused as exc:
            form.add_error("command", str(exc))
    if form.errors:
        return _page(request, prompt_form=form, status=400)
    messages.success(request, _("Prompt saved. Type / in a message to use it."))
    return redirect("personal:settings")


@login_required
@require_POST
def prompt_edit(request, prompt_id: int):
    prompt = _own_prompt(request, prompt_id)
    form = PromptForm(request.POST)
    if form.is_valid():
        try:
            services.prompt_update(prompt=prompt, **form.cleaned_data)
            messages.success(request, _("Prompt changed."))
        except services.PromptRefused as exc:
            messages.error(request, str(exc))
    else:
        messages.error(request, _("The prompt was not changed: fill in its command, title and text."))
    return redirect("personal:settings")


@login_required
@require_POST
def prompt_delete(request, prompt_id: int):
    services.prompt_delete(prompt=_own_prompt(request, prompt_id))
    messages.success(request, _("Prompt deleted."))
    return redirect("personal:settings")
