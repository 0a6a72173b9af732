"""Page views over one of the signed-in user's own objects (a knowledge base, a document, a memory, a prompt, an
assistant): the object is found in the owner's queryset, so another user's id is a 404 (never a 403)."""

from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.db.models import Model, QuerySet
from django.forms import Form
from django.http import HttpRequest, HttpResponseRedirect
from django.views.generic import DeleteView
from django.views.generic.detail import SingleObjectMixin

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class OwnedObjectMixin(LoginRequiredMixin, SingleObjectMixin):
    """`get_object()` looks only among the user's own objects: the model's `for_user` (its one ownership rule) is
    part of the query. A view sets `model` and `pk_url_kwarg` (the id's name in its URL)."""

    request: HttpRequest

    def get_queryset(self) -> QuerySet[Any]:
        objects: Any = super().get_queryset()  # the model's own QuerySet class, which has for_user
        return objects.for_user(self.request.user)


class OwnedObjectDeleteView(OwnedObjectMixin, DeleteView):
    """POST only: delete the object through its app's service (`delete_object`: a service may do more than delete a
    row), say so with `success_message`, and go to `get_success_url()`."""

    http_method_names = ["post"]
    success_message: "StrOrPromise" = ""

    def delete_object(self, obj: Model) -> None:
        raise NotImplementedError

    def form_valid(self, form: Form) -> HttpResponseRedirect:
        self.delete_object(self.object)
        messages.success(self.request, self.success_message)
        return HttpResponseRedirect(self.get_success_url())
