"""Admin registration (the review panel issue builds this out)."""

from django.contrib import admin

from conversations.models import Conversation, Feedback, ReviewLog, Turn

admin.site.register(Conversation)
admin.site.register(Turn)
admin.site.register(Feedback)
admin.site.register(ReviewLog)
