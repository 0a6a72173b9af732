"""Attachments in an S3-compatible store (django-storages, as ATTACHMENTS_S3_BUCKET configures it), against
moto's S3 server over real HTTP on 127.0.0.1: upload, the model reads the text, the owner downloads the file,
deleting the chat deletes the object."""

import io

import boto3
import pytest
from moto.server import ThreadedMotoServer

from conversations.services import conversation_create
from tests.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)

BUCKET = "chatsite-files"
CREDENTIALS = {"aws_access_key_id": "test-key", "aws_secret_access_key": "test-secret", "region_name": "us-east-1"}


@pytest.fixture
def s3(settings):
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, **CREDENTIALS)
    client.create_bucket(Bucket=BUCKET)
    # What chatsite/settings.py builds from ATTACHMENTS_S3_BUCKET and AWS_S3_ENDPOINT_URL.
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
        "bucket_name": BUCKET, "endpoint_url": endpoint, "default_acl": "private", "querystring_auth": True,
        "file_overwrite": False, "access_key": CREDENTIALS["aws_access_key_id"],
        "secret_key": CREDENTIALS["aws_secret_access_key"], "region_name": "us-east-1",
    }}}
    yield client
    server.stop()


def keys(client) -> list[str]:
    return [item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_attachments_live_in_the_bucket(s3, key_client, user, fake_upstream):
    file = io.BytesIO(b"notes kept in S3")
    file.name = "notes.txt"
    uploaded = key_client.post("/api/v1/attachments/", {"file": file}, format="multipart")
    assert uploaded.status_code == 201, uploaded.content
    stored = keys(s3)
    assert len(stored) == 1 and stored[0].startswith(f"attachments/{user.pk}/")
    assert s3.get_object(Bucket=BUCKET, Key=stored[0])["Body"].read() == b"notes kept in S3"

    conversation = conversation_create(owner=user)
    sent = key_client.post(f"/api/v1/conversations/{conversation.pk}/turns/",
                           {"content": "read it", "attachments": [uploaded.json()["id"]]}, format="json")
    assert sent.status_code == 201
    assert "notes kept in S3" in fake_upstream.chat_requests[-1].messages[-1]["content"]
    download = key_client.get(uploaded.json()["url"])
    assert b"".join(download.streaming_content) == b"notes kept in S3"

    assert key_client.delete(f"/api/v1/conversations/{conversation.pk}/").status_code == 204
    assert keys(s3) == []
