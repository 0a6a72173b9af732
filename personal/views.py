"""The personalization page: custom instructions, the memory switch, memories, prompts and assistants to add, edit
and delete."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.decorators.http import require_POST

from chatsite.owned_views import OwnedObjectDeleteView, OwnedObjectMixin
from personal import selectors, services
from personal.forms import AssistantForm, InstructionsForm, MemoryForm, PromptForm
from personal.models import Assistant, Memory, Prompt

ASSISTANTS_URL = format_lazy("{}#assistants", reverse_lazy("personal:settings"))


def _form_errors(form) -> str:
    """A form's errors in one line, for the message of an edit made in a list (the page shows no bound form)."""
    return " ".join(str(error) for errors in form.errors.values() for error in errors)


def _page(request, *, instructions_form=None, memory_form=None, prompt_form=None, assistant_form=None, status=200):
    personalization = selectors.personalization_get(user_id=request.user.pk)
    context = {
        "instructions_form": instructions_form or InstructionsForm(initial={
            "about_me": personalization.about_me, "answer_style": personalization.answer_style,
            "memory_enabled": personalization.memory_enabled,
        }),
        "memory_form": memory_form or MemoryForm(),
        "memories": selectors.memory_list(user=request.user),
        "memory_enabled": personalization.memory_enabled,
        "prompt_form": prompt_form or PromptForm(user=request.user),
        "prompts": [
            (prompt, PromptForm(user=request.user, prompt=prompt) if prompt.owner_id == request.user.pk else None)
            for prompt in selectors.prompts_visible(user=request.user).select_related("owner")
        ],
        "assistant_form": assistant_form or AssistantForm(user=request.user),
        "assistants": [
            (assistant, AssistantForm(user=request.user, assistant=assistant),
             request.build_absolute_uri(assistant.get_absolute_url()))
            for assistant in selectors.assistant_list(user=request.user)
        ],
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


class MemoryEditView(OwnedObjectMixin, View):
    model = Memory
    pk_url_kwarg = "memory_id"
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        memory = self.get_object()
        form = MemoryForm(request.POST)
        if form.is_valid():
            services.memory_update(memory=memory, content=form.cleaned_data["content"])
            messages.success(request, _("Memory changed."))
        else:
            messages.error(request, _("A memory must have text, at most 500 characters."))
        return redirect("personal:settings")


class MemoryDeleteView(OwnedObjectDeleteView):
    model = Memory
    pk_url_kwarg = "memory_id"
    success_message = gettext_lazy("Memory deleted.")
    success_url = reverse_lazy("personal:settings")

    def delete_object(self, obj):
        services.memory_delete(memory=obj)


@login_required
@require_POST
def prompt_add(request):
    form = PromptForm(request.POST, user=request.user)
    if form.is_valid():
        try:
            services.prompt_create(owner=request.user, **form.cleaned_data)
        except services.PromptRefused as exc:
            form.add_error("command", str(exc))
    if form.errors:
        return _page(request, prompt_form=form, status=400)
    messages.success(request, _("Prompt saved. Type / in a message to use it."))
    return redirect("personal:settings")


class PromptEditView(OwnedObjectMixin, View):
    model = Prompt
    pk_url_kwarg = "prompt_id"
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        prompt = self.get_object()
        form = PromptForm(request.POST, user=request.user, prompt=prompt)
        if form.is_valid():
            try:
                services.prompt_update(prompt=prompt, **form.cleaned_data)
                messages.success(request, _("Prompt changed."))
            except services.PromptRefused as exc:
                messages.error(request, str(exc))
        else:
            messages.error(request, _("The prompt was not changed: %(errors)s") % {"errors": _form_errors(form)})
        return redirect("personal:settings")


class PromptDeleteView(OwnedObjectDeleteView):
    model = Prompt
    pk_url_kwarg = "prompt_id"
    success_message = gettext_lazy("Prompt deleted.")
    success_url = reverse_lazy("personal:settings")

    def delete_object(self, obj):
        services.prompt_delete(prompt=obj)


@login_required
@require_POST
def assistant_add(request):
    form = AssistantForm(request.POST, user=request.user)
    if not form.is_valid():
        return _page(request, assistant_form=form, status=400)
    try:
        assistant = services.assistant_create(owner=request.user, **form.cleaned_data)
    except services.SharingRefused as exc:
        form.add_error(exc.field, str(exc))
        return _page(request, assistant_form=form, status=400)
    messages.success(request, _("Assistant “%(name)s” made. Start a chat with it from the sidebar, or type @ in a "
                                "message.") % {"name": assistant.name})
    return redirect(ASSISTANTS_URL)


class AssistantEditView(OwnedObjectMixin, View):
    model = Assistant
    pk_url_kwarg = "assistant_id"
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        assistant = self.get_object()
        form = AssistantForm(request.POST, user=request.user, assistant=assistant)
        if form.is_valid():
            try:
                services.assistant_update(assistant=assistant, **form.cleaned_data)
                messages.success(request, _("Assistant changed."))
            except services.SharingRefused as exc:
                messages.error(request, _("The assistant was not changed: %(errors)s") % {"errors": str(exc)})
        else:
            messages.error(request, _("The assistant was not changed: %(errors)s") % {"errors": _form_errors(form)})
        return redirect(ASSISTANTS_URL)


class AssistantDeleteView(OwnedObjectDeleteView):
    model = Assistant
    pk_url_kwarg = "assistant_id"
    success_message = gettext_lazy("Assistant deleted. Its chats stay.")
    success_url = ASSISTANTS_URL

    def delete_object(self, obj):
        services.assistant_delete(assistant=obj)
