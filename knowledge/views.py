"""The Knowledge pages: bases (list, create, delete), a base's documents (upload, indexing progress, delete), and a
passage shown in its document (where a citation opens)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.decorators.http import require_GET
from django.views.generic import DetailView

from chatsite.owned_views import OwnedObjectDeleteView, OwnedObjectMixin
from conversations import errors
from knowledge import search, services, vectors
from knowledge.forms import KnowledgeBaseForm
from knowledge.models import Document, KnowledgeBase, Passage

CONTEXT_CHARS = 3_000  # of the document's text shown before and after a passage


@login_required
def base_list(request):
    form = KnowledgeBaseForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                base = services.knowledge_base_create(owner=request.user, **form.cleaned_data)
            except errors.ChatError as exc:
                form.add_error(None, exc.message)
            else:
                return redirect(base)
        status = 400
    bases = search.knowledge_base_list(user=request.user)
    return render(request, "knowledge/list.html", {"form": form, "bases": bases}, status=status)


class KnowledgeBaseDetailView(OwnedObjectMixin, DetailView):
    model = KnowledgeBase
    pk_url_kwarg = "base_id"
    http_method_names = ["get"]
    template_name = "knowledge/base.html"
    context_object_name = "base"

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            documents=search.document_list(base=self.object),
            not_embedded=vectors.passages_not_embedded(base_id=self.object.pk), **kwargs,
        )


def upload_from_form(request, store) -> None:
    """A page's upload form: `store(upload)` the posted file (a knowledge.services upload), the outcome told as a
    message (no file chosen, a refusal's reason, or that it is being indexed)."""
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, _("Choose a file to upload."))
        return
    try:
        store(upload)
    except errors.ChatError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Uploaded: it is being indexed."))


class DocumentUploadView(OwnedObjectMixin, View):
    model = KnowledgeBase
    pk_url_kwarg = "base_id"
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        base = self.get_object()
        upload_from_form(request, lambda upload: services.document_upload(base=base, upload=upload))
        return redirect(base)


class DocumentDeleteView(OwnedObjectDeleteView):
    model = Document
    pk_url_kwarg = "document_id"
    success_message = gettext_lazy("Document deleted.")

    def delete_object(self, obj):
        services.document_delete(document=obj)

    def get_success_url(self):
        return self.object.base.get_absolute_url()


class KnowledgeBaseDeleteView(OwnedObjectDeleteView):
    model = KnowledgeBase
    pk_url_kwarg = "base_id"
    success_message = gettext_lazy("Knowledge base deleted.")
    success_url = reverse_lazy("knowledge:list")

    def delete_object(self, obj):
        services.knowledge_base_delete(base=obj)


@login_required
@require_GET
def passage_detail(request, passage_id: int):
    """The passage, highlighted, with the document's text around it (escaped like any text on the page)."""
    try:
        passage = search.passage_get(user=request.user, passage_id=passage_id)
    except Passage.DoesNotExist:
        raise Http404 from None
    text = passage.document.text
    before_start, after_end = max(passage.start - CONTEXT_CHARS, 0), passage.end + CONTEXT_CHARS
    context = {
        "passage": passage, "document": passage.document,
        "before": text[before_start:passage.start], "cut_before": before_start > 0,
        "after": text[passage.end:after_end], "cut_after": after_end < len(text),
    }
    return render(request, "knowledge/passage.html", context)
