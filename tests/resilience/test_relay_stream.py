"""An answer's Redis stream as the publisher writes it, read back as a follower on another worker reads it."""

import asyncio

import redis
from django.test import override_settings

from conversations.answering import relay
from conversations.answering.events import AnswerDelta, AnswerDone, Entry
from conversations.models import Turn

TURN_ID = 4242


async def test_batches_a_first_write_and_the_end_make_the_stream_a_follower_reads(redis_url):
    url, prefix = redis_url
    caches = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "KEY_PREFIX": prefix}}
    with override_settings(REDIS_URL=url, CACHES=caches):
        key = relay.stream_key(TURN_ID)
        client = redis.Redis.from_url(url)
        client.xadd(key, {"f": b"an earlier run's entry"}, id="0-7")  # a continued answer reuses its turn id
        entries = [Entry.of(seq, AnswerDelta(f"word {seq} ")) for seq in range(1, 6)]
        entries.append(Entry.of(6, AnswerDone(Turn(pk=TURN_ID, role=Turn.Role.ASSISTANT, content="done"))))

        async def publish_then_follow(after: int) -> list[Entry]:
            publisher = relay.Publisher(TURN_ID)
            for entry in entries[:3]:  # the first write: the old stream goes, three entries in one write
                publisher.add(entry)
            await asyncio.sleep(relay.PUBLISH_EVERY_SECONDS * 3)
            publisher.add(entries[3])  # a write of one entry
            await asyncio.sleep(relay.PUBLISH_EVERY_SECONDS * 3)
            for entry in entries[4:]:
                publisher.add(entry)
            await publisher.close()  # the last entries, the end marker and the expiry, in one write
            return [entry async for entry in relay.follow(TURN_ID, after)]

        try:
            read = await publish_then_follow(0)
            assert [(entry.seq, entry.frame) for entry in read] == [(entry.seq, entry.frame) for entry in entries]
            assert [entry.seq for entry in await publish_then_follow(4)] == [5, 6]  # a follower resuming
            assert 0 < client.ttl(key) <= relay.RETAIN_SECONDS
            assert client.xrange(key)[-1] == (relay.END_ID.encode(), {b"end": b"1"})
        finally:
            client.delete(key)
