"""Housekeeping's embeddings catch-up: passages indexed while the embeddings server was down get their vectors from a
later housekeeping run once it is up again, a bounded number per run, with a back-off that keeps a dead server from
being called every run; the knowledge base page says how many passages are not yet embedded. Against the fake
upstream's /v1/embeddings over real HTTP ("down" is a port nothing listens on)."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from chatsite.task_worker import run_queued_tasks
from knowledge import vectors
from knowledge.models import EmbeddingsCatchUpQueued, EmbeddingsOutage, Passage, PassageVector
from knowledge.tests.support import indexed_base
from tests.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)  # the task worker runs the tasks: committed rows

MODEL = "text-embedding-3-small"
OFFICE = {
    "garage.md": b"Every car goes to the basement garage, level minus two, before nine.",
    "leave.md": b"Holiday requests go to your manager two weeks ahead.",
    "canteen.txt": b"The canteen serves soup on Mondays and fish on Fridays.",
}


@pytest.fixture
def embeddings(settings, fake_upstream):
    settings.KNOWLEDGE_EMBEDDINGS_MODEL = MODEL
    return fake_upstream


@pytest.fixture
def bring_up(settings, embeddings):
    """The embeddings server starts down (chatsite points at a port nothing listens on); calling this brings it up
    (the fake upstream)."""
    up_url = settings.OPENAI_BASE_URL
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{free_port()}/v1"

    def bring_up():
        settings.OPENAI_BASE_URL = up_url

    return bring_up


def housekeeping() -> str:
    out = io.StringIO()
    call_command("housekeeping", stdout=out)
    run_queued_tasks()
    return out.getvalue()


def housekeeping_alone() -> str:
    """A housekeeping run while the task worker is behind: what it queues waits."""
    out = io.StringIO()
    call_command("housekeeping", stdout=out)
    return out.getvalue()


def catch_ups_in_queue(status: TaskResultStatus) -> int:
    return DBTaskResult.objects.filter(
        task_path=vectors.embed_missing_passages.module_path, status=status
    ).count()


def time_passes() -> None:
    """The back-off's wait is over."""
    EmbeddingsOutage.objects.update(retry_after=timezone.now() - timedelta(seconds=1))


def page_of(user, base) -> str:
    client = Client()
    client.force_login(user)
    return client.get(base.get_absolute_url()).content.decode()


def test_passages_indexed_while_the_server_was_down_are_embedded_by_housekeeping_once_it_is_up(
    user, embeddings, bring_up
):
    base = indexed_base(user, OFFICE)  # each document's indexing tries the server once, and fails
    assert not PassageVector.objects.exists()
    outage = EmbeddingsOutage.objects.get(model=MODEL)
    # One failure as far as the back-off goes: the second and third documents failed during its first wait.
    assert outage.failures == 1
    assert timezone.now() < outage.retry_after <= timezone.now() + vectors.BACKOFF_FIRST
    assert "3 passages not yet embedded" in page_of(user, base)

    # Within the back-off: housekeeping queues nothing, and nothing calls the server.
    out = housekeeping()
    assert "Embeddings: 3 passage(s) without a vector; text-embedding-3-small failed 1 time(s) in a row" in out
    assert EmbeddingsOutage.objects.get().failures == 1

    # The wait is over, the server still down: one run, one failed call, and a wait twice as long.
    time_passes()
    assert "Embeddings: queued 3 of 3 passage(s) without a vector of text-embedding-3-small." in housekeeping()
    outage = EmbeddingsOutage.objects.get()
    assert outage.failures == 2 and outage.retry_after - outage.failed_at == vectors.BACKOFF_FIRST * 2
    assert not PassageVector.objects.exists()

    # The server is up, but the back-off still runs: not called yet.
    assert embeddings.embedding_requests == []  # it was never reached while down
    bring_up()
    housekeeping()
    assert embeddings.embedding_requests == [] and not PassageVector.objects.exists()

    # The wait is over: the next run embeds them all, in one call, and the outage is over.
    time_passes()
    assert "queued 3 of 3" in housekeeping()
    assert [len(r.body["input"]) for r in embeddings.embedding_requests] == [3]
    assert PassageVector.objects.filter(model=MODEL).count() == Passage.objects.count() == 3
    assert not EmbeddingsOutage.objects.exists()
    assert "not yet embedded" not in page_of(user, base)
    assert "Embeddings: every passage has a vector of text-embedding-3-small." in housekeeping()
    assert len(embeddings.embedding_requests) == 1  # nothing left to embed: no call


def test_each_run_embeds_at_most_the_configured_number_of_passages(user, embeddings, bring_up, settings):
    indexed_base(user, OFFICE)
    bring_up()
    time_passes()
    settings.KNOWLEDGE_EMBED_PASSAGES_PER_RUN = 2

    assert "queued 2 of 3" in housekeeping()
    assert PassageVector.objects.count() == 2
    assert "queued 1 of 1" in housekeeping()
    assert PassageVector.objects.count() == 3
    assert [len(r.body["input"]) for r in embeddings.embedding_requests] == [2, 1]


def test_a_catch_up_still_in_the_queue_is_not_queued_again(user, embeddings, bring_up, settings):
    indexed_base(user, OFFICE)
    bring_up()
    time_passes()
    settings.KNOWLEDGE_EMBED_PASSAGES_PER_RUN = 2

    # The worker is behind: two runs before it runs anything queue one task.
    assert "queued 2 of 3" in housekeeping_alone()
    again = housekeeping_alone()
    assert "Embeddings: 3 passage(s) without a vector; the catch-up task of " in again
    assert "is still waiting or running, no other added." in again
    assert catch_ups_in_queue(TaskResultStatus.READY) == 1

    # It runs: one call for its two passages. The next run queues the last one.
    run_queued_tasks()
    assert [len(r.body["input"]) for r in embeddings.embedding_requests] == [2]
    assert catch_ups_in_queue(TaskResultStatus.SUCCESSFUL) == 1
    assert "queued 1 of 1" in housekeeping_alone()
    assert catch_ups_in_queue(TaskResultStatus.READY) == 1
    run_queued_tasks()
    assert [len(r.body["input"]) for r in embeddings.embedding_requests] == [2, 1]
    assert EmbeddingsCatchUpQueued.objects.count() == 1  # one row, replaced by each catch-up queued


def test_a_catch_up_running_is_waited_for_until_its_worker_is_taken_as_lost(user, embeddings, bring_up):
    indexed_base(user, OFFICE)
    bring_up()
    time_passes()
    assert "queued 3 of 3" in housekeeping_alone()
    # A worker took it, and was killed mid-task: the database queue leaves it running.
    queued = EmbeddingsCatchUpQueued.objects.get()
    started = timezone.now() - vectors.CATCH_UP_LOST_AFTER + timedelta(minutes=1)
    DBTaskResult.objects.filter(pk=queued.result_id).update(status=TaskResultStatus.RUNNING, started_at=started)
    assert "still waiting or running" in housekeeping_alone()
    assert catch_ups_in_queue(TaskResultStatus.READY) == 0

    DBTaskResult.objects.filter(pk=queued.result_id).update(started_at=started - timedelta(minutes=2))
    assert "queued 3 of 3" in housekeeping_alone()
    assert catch_ups_in_queue(TaskResultStatus.READY) == 1
    assert EmbeddingsCatchUpQueued.objects.get().result_id != queued.result_id

    # A catch-up whose result was pruned (long finished) does not hold back the next.
    DBTaskResult.objects.all().delete()
    assert "queued 3 of 3" in housekeeping_alone()


def test_the_back_off_doubles_after_each_failed_try_up_to_a_day(embeddings):
    waits = []
    for _ in range(12):
        outage = vectors.outage_record(model=MODEL, error="connection refused")
        waits.append(outage.retry_after - outage.failed_at)
        time_passes()
    assert waits[:4] == [timedelta(minutes=m) for m in (5, 10, 20, 40)]
    assert waits[-1] == vectors.BACKOFF_LONGEST == timedelta(hours=24)

    # Failures during a wait (documents indexed meanwhile) do not lengthen it.
    first = vectors.outage_record(model="another-model", error="connection refused")
    for _ in range(5):
        again = vectors.outage_record(model="another-model", error="still refused")
    assert (again.failures, again.retry_after, again.error) == (1, first.retry_after, "still refused")


def test_a_model_changed_since_indexing_is_caught_up_too(user, embeddings, settings):
    indexed_base(user, OFFICE)
    assert set(PassageVector.objects.values_list("model", flat=True)) == {MODEL}
    settings.KNOWLEDGE_EMBEDDINGS_MODEL = "another-embeddings-model"
    assert "queued 3 of 3" in housekeeping()
    assert set(PassageVector.objects.values_list("model", flat=True)) == {"another-embeddings-model"}


def test_without_an_embeddings_model_housekeeping_says_nothing_of_embeddings(user, fake_upstream):
    indexed_base(user, OFFICE)
    assert "Embeddings" not in housekeeping()
    assert fake_upstream.embedding_requests == []


def test_the_not_yet_embedded_note_is_korean(user, embeddings, bring_up):
    base = indexed_base(user, OFFICE)
    client = Client()
    client.force_login(user)
    client.cookies["django_language"] = "ko"
    assert "아직 임베딩되지 않은 구절 3개" in client.get(base.get_absolute_url()).content.decode()


def test_staff_see_the_outage_in_the_admin_and_deleting_it_lets_the_next_run_try_at_once(
    user, make_user, embeddings, bring_up
):
    indexed_base(user, OFFICE)
    outage = EmbeddingsOutage.objects.get(model=MODEL)
    staff = Client()
    staff.force_login(make_user("root", is_staff=True, is_superuser=True))
    listing = staff.get("/admin/knowledge/embeddingsoutage/").content.decode()
    assert MODEL in listing and "The model service is unavailable" in listing
    assert staff.get(f"/admin/knowledge/embeddingsoutage/{outage.pk}/change/").status_code == 200
    assert staff.get("/admin/knowledge/embeddingsoutage/add/").status_code == 403

    bring_up()
    assert "queued" not in housekeeping()  # still within the back-off
    response = staff.post(f"/admin/knowledge/embeddingsoutage/{outage.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and not EmbeddingsOutage.objects.exists()
    assert "queued 3 of 3" in housekeeping()
    assert PassageVector.objects.filter(model=MODEL).count() == 3
