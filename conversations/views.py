"""HTML pages of the chat."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render

from conversations.models import Conversation


@login_required
def home(request):
    return render(request, "conversations/chat.html", {"conversation": None})


@login_required
def conversation_detail(request, conversation_id):
    conversation = get_object_or_404(Conversation.objects.for_user(request.user), pk=conversation_id)
    return render(request, "conversations/chat.html", {"conversation": conversation})
