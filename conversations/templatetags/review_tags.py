"""Template access to the review notice, so `_review_notice.html` needs only the conversation."""

from django import template

from conversations.reviews import review_notice_for

register = template.Library()


@register.simple_tag
def review_notice(conversation):
    """`{% review_notice conversation as notice %}`: the latest review notice, or None."""
    if conversation is None:
        return None
    return review_notice_for(conversation)
