"""The project page: a project's instructions, default model (only the models the user's groups allow) and files
(knowledge bases attached, uploads straight into the project's own base); a new chat started from it; another user's
project is a 404 on every route and changes nothing."""

import json
import os
import re

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from chatsite.task_worker import run_queued_tasks
from conversations.models import Project
from conversations.organizing import project_create
from conversations.services import conversation_create
from conversations.tests.factories import add_turns
from knowledge.models import Citation, Document, KnowledgeBase, Passage, PassageVector
from knowledge.services import knowledge_base_create
from knowledge.tests.support import indexed_base
from teams.models import GroupPolicy
from tests.support import assert_error_shape

pytestmark = pytest.mark.django_db

NOTE = b"# Heron\n\nThe launch code for project Heron is 7-ALPHA-93.\n"


@pytest.fixture
def two_models(settings, fake_upstream):
    settings.CHAT_MODELS = ["fake-model", "other-model"]


@pytest.fixture
def page(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def project(user):
    return project_create(owner=user, name="Heron", instructions="Answer in French.")


def form_data(project, **changes):
    return {"name": project.name, "instructions": project.instructions, "model": project.model, **changes}


def test_the_page_shows_the_project_its_chats_and_a_new_chat_in_it(page, user, project, two_models):
    in_project = conversation_create(owner=user, title="Launch plan", project=project)
    conversation_create(owner=user, title="Elsewhere")
    response = page.get(reverse("conversations:project", args=[project.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Answer in French." in html
    assert f'href="{reverse("conversations:home")}?project={project.pk}"' in html
    assert list(response.context["chats"]) == [in_project]
    assert [choice for choice, _label in response.context["form"].fields["model"].choices] == [
        "", "fake-model", "other-model"]


def test_saving_sets_the_instructions_model_and_knowledge_bases(page, user, project, two_models):
    handbook = knowledge_base_create(owner=user, name="Handbook")
    unrelated = knowledge_base_create(owner=user, name="Unrelated")
    url = reverse("conversations:project", args=[project.pk])
    response = page.post(url, form_data(project, name=" Heron  launch ", instructions="Answer in Korean.",
                                        model="other-model", knowledge_bases=[handbook.pk]))
    assert response.status_code == 302 and response["Location"] == url
    project.refresh_from_db()
    assert (project.name, project.instructions, project.model) == ("Heron launch", "Answer in Korean.", "other-model")
    assert list(project.knowledge_bases.all()) == [handbook]

    # The list replaces the project's bases: an unticked one is detached.
    page.post(url, form_data(project, knowledge_bases=[unrelated.pk]))
    assert list(project.knowledge_bases.all()) == [unrelated]
    page.post(url, form_data(project))
    assert not project.knowledge_bases.exists()


def test_a_model_the_users_groups_do_not_allow_is_neither_offered_nor_saved(page, user, project, two_models):
    group = Group.objects.create(name="contractors")
    GroupPolicy.objects.create(group=group, allowed_models=["other-model"])
    group.user_set.add(user)
    url = reverse("conversations:project", args=[project.pk])
    assert [c for c, _label in page.get(url).context["form"].fields["model"].choices] == ["", "other-model"]

    response = page.post(url, form_data(project, model="fake-model", instructions="changed"))
    assert response.status_code == 400
    assert response.context["form"].errors["model"]
    project.refresh_from_db()
    assert (project.model, project.instructions) == ("", "Answer in French.")


def test_another_users_base_and_a_taken_name_are_refused_and_change_nothing(page, user, other_user, project):
    theirs = knowledge_base_create(owner=other_user, name="Theirs")
    project_create(owner=user, name="Taken")
    url = reverse("conversations:project", args=[project.pk])
    response = page.post(url, form_data(project, knowledge_bases=[theirs.pk], instructions="changed"))
    assert response.status_code == 400 and response.context["form"].errors["knowledge_bases"]
    response = page.post(url, form_data(project, name="Taken", instructions="changed"))
    assert response.status_code == 400 and response.context["form"].errors["name"]
    assert b"<h1 id=\"project-heading\">Heron</h1>" in response.content  # the saved name, not the refused one
    project.refresh_from_db()
    assert (project.name, project.instructions) == ("Heron", "Answer in French.")
    assert not theirs.projects.exists()


@pytest.mark.django_db(transaction=True)  # the task worker runs the indexing: committed rows
def test_an_upload_goes_into_the_projects_own_base_made_on_the_first_one(page, user, project, fake_upstream):
    url = reverse("conversations:project-upload", args=[project.pk])
    response = page.post(url, {"file": SimpleUploadedFile("heron.md", NOTE)})
    assert response.status_code == 302
    base = KnowledgeBase.objects.get()
    assert (base.owner, base.name, base.upload_project) == (user, "Heron", project)
    assert list(base.projects.all()) == [project]

    # Detached by the user, then a second upload: the same base, attached again.
    base.projects.clear()
    page.post(url, {"file": SimpleUploadedFile("more.md", b"# More\n\nMore notes.\n")})
    assert KnowledgeBase.objects.get() == base and list(base.projects.all()) == [project]
    run_queued_tasks()
    assert sorted(Document.objects.filter(base=base).values_list("name", "status")) == [
        ("heron.md", "ready"), ("more.md", "ready")]

    shown = page.get(reverse("conversations:project", args=[project.pk]))
    assert [d.name for d in shown.context["documents"]] == ["heron.md", "more.md"]


def test_a_refused_first_upload_leaves_no_base(page, project):
    url = reverse("conversations:project-upload", args=[project.pk])
    response = page.post(url, {"file": SimpleUploadedFile("empty.md", b"")}, follow=True)
    assert "The file is empty." in response.content.decode()
    response = page.post(url, {"file": SimpleUploadedFile("tool.exe", b"MZ\x90\x00\x03\x00\x00\x00" * 64)},
                         follow=True)
    assert response.redirect_chain and not KnowledgeBase.objects.exists()
    assert page.post(url).status_code == 302 and not KnowledgeBase.objects.exists()  # no file at all


def test_another_users_project_is_404_on_every_route_and_changes_nothing(page, other_user):
    theirs = project_create(owner=other_user, name="Theirs", instructions="Secret.")
    detail = reverse("conversations:project", args=[theirs.pk])
    assert page.get(detail).status_code == 404
    assert page.post(detail, {"name": "Mine now", "instructions": "", "model": ""}).status_code == 404
    upload = reverse("conversations:project-upload", args=[theirs.pk])
    assert page.post(upload, {"file": SimpleUploadedFile("x.md", NOTE)}).status_code == 404
    assert page.get(f"{reverse('conversations:home')}?project={theirs.pk}").status_code == 404
    theirs.refresh_from_db()
    assert (theirs.name, theirs.instructions) == ("Theirs", "Secret.")
    assert not KnowledgeBase.objects.exists()


def test_a_new_chat_in_a_project_starts_with_its_model_and_shows_its_chats(page, user, project, two_models):
    Project.objects.filter(pk=project.pk).update(model="other-model")
    in_project = conversation_create(owner=user, title="In the project", project=project)
    outside = conversation_create(owner=user, title="Outside")
    response = page.get(f"{reverse('conversations:home')}?project={project.pk}")
    assert response.status_code == 200
    assert response.context["last_model"] == "other-model"
    html = response.content.decode()
    assert f'data-project="{project.pk}"' in html
    assert str(in_project.pk) in html and str(outside.pk) not in html  # the sidebar lists the project's chats
    assert 'id="project-chip"' in html

    # A chat in the project opens with the project shown in the sidebar too.
    response = page.get(in_project.get_absolute_url())
    assert response.context["history_project"] == project

    assert page.get(f"{reverse('conversations:home')}?project=x").status_code == 400
    plain = page.get(reverse("conversations:home"))
    assert plain.context["history_project"] is None and 'data-project=""' in plain.content.decode()


def test_a_model_no_longer_allowed_is_not_preselected(page, user, project, two_models):
    Project.objects.filter(pk=project.pk).update(model="retired-model")
    response = page.get(f"{reverse('conversations:home')}?project={project.pk}")
    assert response.context["last_model"] != "retired-model"


def test_the_project_page_and_its_script_strings_are_korean(page, project):
    page.cookies["django_language"] = "ko"
    html = page.get(reverse("conversations:project", args=[project.pk])).content.decode()
    for korean in ["이 프로젝트에서 새 채팅", "지침과 모델", "기본 모델", "지식 베이스", "업로드"]:
        assert korean in html
    chat = page.get(f"{reverse('conversations:home')}?project={project.pk}").content.decode()
    assert 'aria-label="프로젝트 Heron 열기"' in chat
    strings = json.loads(re.search(r'<script id="js-strings" type="application/json">(.*?)</script>', chat).group(1))
    assert strings["document_passages"] == "구절 %(count)s개"
    assert strings["document_uploading"] == "%(name)s 업로드 중: %(percent)s"
    assert strings["document_queued"] == "색인 대기 중"


@pytest.mark.django_db(transaction=True)  # the task worker runs the indexing: committed rows
def test_the_api_lists_a_projects_files_and_uploads_into_its_own_base(api_client, user, project, settings):
    url = reverse("api_project_document_list", args=[project.pk])
    created = api_client.post(url, {"file": SimpleUploadedFile("heron.md", NOTE)}, format="multipart")
    assert created.status_code == 201, created.content
    base = KnowledgeBase.objects.get(upload_project=project)
    assert created.json()["base_id"] == base.pk and created.json()["status"] == "queued"
    run_queued_tasks()
    [listed] = api_client.get(url).json()["results"]
    assert (listed["name"], listed["status"], listed["base_id"]) == ("heron.md", "ready", base.pk)

    # Refusals in the API's one error shape: no file, an empty one, a base full of documents.
    assert_error_shape(api_client.post(url, {}, format="multipart"), 400)
    assert_error_shape(api_client.post(url, {"file": SimpleUploadedFile("e.md", b"")}, format="multipart"), 400,
                       "attachment_refused")
    settings.KNOWLEDGE_DOCUMENTS_PER_BASE = 1
    assert_error_shape(api_client.post(url, {"file": SimpleUploadedFile("f.md", NOTE)}, format="multipart"), 400,
                       "knowledge_refused")
    assert Document.objects.count() == 1


def test_the_api_is_404_for_another_users_project(api_client, other_user):
    theirs = project_create(owner=other_user, name="Theirs")
    url = reverse("api_project_document_list", args=[theirs.pk])
    assert_error_shape(api_client.get(url), 404, "not_found")
    assert_error_shape(api_client.post(url, {"file": SimpleUploadedFile("x.md", NOTE)}, format="multipart"), 404,
                       "not_found")
    assert not KnowledgeBase.objects.exists()


@pytest.mark.django_db(transaction=True)  # the file's bytes leave the storage when the deletion commits
def test_a_file_is_deleted_from_the_project_page_and_the_chats_that_cited_it_keep_their_citations(
    page, user, project, fake_upstream
):
    upload = reverse("conversations:project-upload", args=[project.pk])
    page.post(upload, {"file": SimpleUploadedFile("heron.md", NOTE)})
    run_queued_tasks()
    document = Document.objects.get()
    [passage] = document.passages.all()
    PassageVector.objects.create(passage=passage, model="an-embeddings-model", vector=b"\x00" * 32)
    chat = conversation_create(owner=user, title="Launch", project=project)
    answer = add_turns(chat, ("user", "The launch code?"), ("assistant", "It is 7-ALPHA-93 [1]."))
    Citation.objects.create(turn=answer, number=1, passage=passage, document_name="heron.md", page=1,
                            text=passage.text)
    path = document.file.path
    url = reverse("conversations:project-document-delete", args=[project.pk, document.pk])

    shown = page.get(reverse("conversations:project", args=[project.pk])).content.decode()
    assert f'action="{url}"' in shown and 'data-confirm="Delete heron.md? ' in shown
    assert page.get(url).status_code == 405  # POST only

    response = page.post(url, follow=True)
    assert response.redirect_chain == [(reverse("conversations:project", args=[project.pk]), 302)]
    assert "Deleted heron.md." in response.content.decode()
    assert not Document.objects.exists() and not Passage.objects.exists() and not PassageVector.objects.exists()
    assert not os.path.exists(path)
    citation = Citation.objects.get(turn=answer)
    assert (citation.passage, citation.document_name, citation.text) == (None, "heron.md", passage.text)
    assert KnowledgeBase.objects.get(upload_project=project).documents.count() == 0  # the base stays, empty
    assert page.post(url).status_code == 404  # gone


@pytest.mark.django_db(transaction=True)
def test_the_delete_button_and_its_question_are_korean(page, user, project):
    indexed_base(user, {"heron.md": NOTE}, name="Heron").projects.add(project)
    page.cookies["django_language"] = "ko"
    html = page.get(reverse("conversations:project", args=[project.pk])).content.decode()
    assert 'aria-label="heron.md 삭제"' in html
    assert 'data-confirm="heron.md 파일을 삭제할까요? ' in html
    assert "구절 1개" in html  # indexed: its passages are counted


@pytest.mark.django_db(transaction=True)
def test_only_the_projects_own_files_can_be_deleted_from_its_page(page, user, other_user, project):
    elsewhere = indexed_base(user, {"elsewhere.md": b"Not one of the project's files."}, name="Elsewhere")
    theirs_project = project_create(owner=other_user, name="Theirs")
    theirs = indexed_base(other_user, {"theirs.md": b"Their file."}, name="Theirs")
    theirs.projects.add(theirs_project)
    mine_in_project = indexed_base(user, {"mine.md": b"A file of the project."}, name="Mine")
    mine_in_project.projects.add(project)

    for project_id, document in [
        (project.pk, Document.objects.get(base=elsewhere)),  # mine, but not in this project
        (project.pk, Document.objects.get(base=theirs)),  # theirs, through my project
        (theirs_project.pk, Document.objects.get(base=theirs)),  # theirs, through their project
        (theirs_project.pk, Document.objects.get(base=mine_in_project)),  # mine, through their project
    ]:
        url = reverse("conversations:project-document-delete", args=[project_id, document.pk])
        assert page.post(url).status_code == 404, (project_id, document.name)
    assert Document.objects.count() == 3

    mine = Document.objects.get(base=mine_in_project)
    assert page.post(reverse("conversations:project-document-delete", args=[project.pk, mine.pk])).status_code == 302
    assert sorted(Document.objects.values_list("name", flat=True)) == ["elsewhere.md", "theirs.md"]
