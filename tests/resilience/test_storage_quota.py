"""The per-user storage quota under parallel uploads on two uvicorn workers (PostgreSQL, Redis): each upload
reserves its size in the user's StorageUsage row before its file is written."""

import threading

import httpx2 as httpx
import pytest

from conversations.models import Attachment, StorageUsage
from tests.servers import upstream_env
from tests.support import assert_error_shape, requires_postgresql

pytestmark = pytest.mark.django_db(transaction=True)

FILE_BYTES = 150_000
QUOTA_BYTES = 1_000_000  # room for 6 of them


def upload_all_at_once(base_url: str, count: int, headers: dict) -> list[httpx.Response]:
    """`count` uploads of FILE_BYTES, each from its own thread, released together."""
    barrier = threading.Barrier(count)
    responses: list = [None] * count

    def send(i):
        with httpx.Client(base_url=base_url, timeout=60, headers=headers) as client:
            files = {"file": (f"notes-{i}.txt", b"x" * FILE_BYTES, "text/plain")}
            barrier.wait()
            try:
                responses[i] = client.post("/api/v1/attachments/", files=files)
            except httpx.HTTPError as exc:
                responses[i] = exc

    threads = [threading.Thread(target=send, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    return responses


def test_parallel_uploads_on_two_workers_never_pass_the_storage_quota(
    uvicorn_server, fake_upstream, user, api_key, redis_url, tmp_path
):
    """24 uploads of 150 KB at once against a 1 MB quota, three rounds. Before, the sum of stored files was read,
    then the file saved, with no lock: up to 1.65 MB were stored. Now exactly 6 fit, the others are a 413, and
    the ledger matches what is stored; deleting files gives their room back for the next round."""
    requires_postgresql("server processes sharing the test database")
    url, prefix = redis_url
    env = {**upstream_env(fake_upstream.base_url), "REDIS_URL": url, "CACHE_KEY_PREFIX": prefix,
           "CHAT_ATTACHMENT_STORAGE_QUOTA_BYTES": str(QUOTA_BYTES), "CHAT_THROTTLE_RATE": "1000/min",
           "MEDIA_ROOT": str(tmp_path / "media")}
    server = uvicorn_server(workers=2, env=env)
    headers = {"Authorization": f"Bearer {api_key}"}
    for _ in range(3):
        responses = upload_all_at_once(server.base_url, 24, headers)
        admitted = [r for r in responses if isinstance(r, httpx.Response) and r.status_code == 201]
        for refused in (r for r in responses if r not in admitted):
            assert_error_shape(refused, 413)
        assert len(admitted) == 6, [getattr(r, "status_code", r) for r in responses]
        stored = sum(Attachment.objects.filter(owner=user).values_list("size", flat=True))
        assert stored == 6 * FILE_BYTES
        assert StorageUsage.objects.get(user=user).bytes == stored
        with httpx.Client(base_url=server.base_url, headers=headers) as client:
            for response in admitted:
                assert client.delete(f"/api/v1/attachments/{response.json()['id']}/").status_code == 204
        assert StorageUsage.objects.get(user=user).bytes == 0
