"""The project page: a project's chats, its instructions and default model, and its files (the knowledge bases its
chats search, uploads straight into the project, deleting one). Thin views over organizing and knowledge.services;
the project is looked up through its owner, so another user's id is a 404."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from conversations import organizing
from conversations.models import Project
from conversations.selectors import conversation_list, models_offered
from knowledge import services as knowledge_services
from knowledge.models import Document, KnowledgeBase
from knowledge.views import upload_from_form

CHATS_SHOWN = 50


class ProjectForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=80)
    instructions = forms.CharField(
        label=gettext_lazy("Instructions"), required=False, max_length=20_000, strip=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=gettext_lazy("Added to the system prompt of every chat in this project."),
    )
    model = forms.ChoiceField(
        label=gettext_lazy("Default model"), required=False,
        help_text=gettext_lazy("A new chat in this project starts with it."),
    )
    knowledge_bases = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Knowledge bases"), required=False, queryset=KnowledgeBase.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("Every chat in this project searches these bases and cites the passages it uses."),
    )

    def __init__(self, *args, user, project: Project, **kwargs):
        kwargs.setdefault("initial", {
            "name": project.name, "instructions": project.instructions, "model": project.model,
            "knowledge_bases": list(project.knowledge_bases.filter(owner=user)),
        })
        super().__init__(*args, **kwargs)
        # Only the models the user's groups allow (as the API's OfferedModelField), and only their own bases.
        model_field = self.fields["model"]
        assert isinstance(model_field, forms.ChoiceField)
        model_field.choices = [("", _("None: the model you last used"))] + [
            (name, name) for name in models_offered(user)
        ]
        bases_field = self.fields["knowledge_bases"]
        assert isinstance(bases_field, forms.ModelMultipleChoiceField)
        bases_field.queryset = KnowledgeBase.objects.for_user(user)


def _own_project(request, project_id: int) -> Project:
    return get_object_or_404(Project.objects.for_user(request.user), pk=project_id)


@login_required
def project_detail(request, project_id: int):
    """GET: the project page. POST: save its name, instructions, default model and knowledge bases."""
    project = _own_project(request, project_id)
    form = ProjectForm(request.POST if request.method == "POST" else None, user=request.user, project=project)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                with transaction.atomic():
                    organizing.project_update(
                        project=project, name=data["name"], instructions=data["instructions"], model=data["model"]
                    )
                    knowledge_services.project_knowledge_set(
                        project=project, base_ids=[base.pk for base in data["knowledge_bases"]]
                    )
            except organizing.ProjectNameTaken:
                form.add_error("name", _("You already have a project with that name."))
            else:
                messages.success(request, _("Project saved."))
                return redirect("conversations:project", project_id=project.pk)
        status = 400
    project.refresh_from_db(fields=["name"])  # the heading keeps the saved name while the form shows the typed one
    documents = Document.objects.of_project(project)
    chats = conversation_list(user=request.user).filter(project=project)[:CHATS_SHOWN]
    return render(request, "conversations/project.html", {
        "project": project, "form": form, "documents": documents, "chats": chats,
    }, status=status)


@login_required
@require_POST
def project_document_upload(request, project_id: int):
    """A file put straight into the project: checked, stored and indexed as any knowledge document, in the
    project's own base (knowledge.services.project_document_upload)."""
    project = _own_project(request, project_id)
    upload_from_form(
        request, lambda upload: knowledge_services.project_document_upload(project=project, upload=upload)
    )
    return redirect("conversations:project", project_id=project.pk)


@login_required
@require_POST
def project_document_delete(request, project_id: int, document_id: int):
    """Delete one of the project's files where it is listed: the document, its passages and vectors
    (knowledge.services.document_delete). Answers that cited it keep their citations (the document's name and the
    passage's text are stored with them). Found among the project's own files, so another user's id is a 404."""
    project = _own_project(request, project_id)
    document = get_object_or_404(Document.objects.of_project(project), pk=document_id)
    knowledge_services.document_delete(document=document)
    messages.success(request, _("Deleted %(name)s.") % {"name": document.name})
    return redirect("conversations:project", project_id=project.pk)
