"""The reads: a chat's bases (with a project's, through `extra_base_ids`), and the words a question is searched by."""

import pytest

from conversations.services import conversation_create
from knowledge.search import knowledge_bases_for_conversation, search_terms
from knowledge.services import conversation_knowledge_set, knowledge_base_create

pytestmark = pytest.mark.django_db


def test_a_chats_bases_and_extra_ones_are_the_owners_only(user, other_user):
    attached, project, unrelated = (knowledge_base_create(owner=user, name=n) for n in ("chat", "project", "other"))
    foreign = knowledge_base_create(owner=other_user, name="bob's")
    conversation = conversation_create(owner=user, title="")
    conversation_knowledge_set(conversation=conversation, base_ids=[attached.pk])

    assert list(knowledge_bases_for_conversation(conversation)) == [attached]
    extra = knowledge_bases_for_conversation(conversation, extra_base_ids=[project.pk, foreign.pk])
    assert sorted(base.name for base in extra) == ["chat", "project"]
    assert unrelated not in extra


def test_search_terms_drop_stop_words_and_repeats():
    assert search_terms("What is the launch code, the LAUNCH code?") == ["launch", "code"]
    assert search_terms('"quoted" OR NEAR(x) *') == ["quoted", "near"]
