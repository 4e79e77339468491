"""Per-customer rate limits and the message size cap in the real pipeline; the limiters' windows."""
from __future__ import annotations

from redis.asyncio import Redis

from channels.messages import Channel, InboundMessage, new_id
from supportlah.admin.limits import LocalFloodLimiter, RedisFloodLimiter
from tests.harness import drain, running_container, web_message
from tests.services import fresh_redis_prefix


async def test_a_flooding_customer_is_told_once_then_ignored_for_the_minute(backend):
    settings = backend.settings(rate_limit_contact_per_minute=2, pdpa_consent_mode="off")
    async with running_container(settings, start_queue=False) as container:
        ids = [(await container.ingress.accept(web_message("visitor-flood-01", f"question {n}"))).message_id
               for n in range(4)]
        other = (await container.ingress.accept(web_message("visitor-calm-001", "question"))).message_id
        await drain(container)
        answerers = [(await container.store.get_reply(i)).backend.get("answerer") for i in ids]
        assert answerers[2:] == ["rate_limited", "rate_limited"]
        assert "rate_limited" not in answerers[:2]
        assert "faster than we can read" in (await container.store.get_reply(ids[2])).text
        assert [len(await container.store.parts_for(i)) for i in ids[2:]] == [1, 0]  # one notice, then silence
        assert (await container.store.get_reply(other)).backend.get("answerer") != "rate_limited"


async def test_an_oversized_message_is_refused_politely(backend):
    settings = backend.settings(max_message_chars=50, pdpa_consent_mode="off")
    async with running_container(settings, start_queue=False) as container:
        long = InboundMessage(channel=Channel.WEB, provider_message_id=new_id(), sender_id="visitor-long-001",
                              text="aircon " * 20)
        message_id = (await container.ingress.accept(long)).message_id
        await drain(container)
        reply = await container.store.get_reply(message_id)
        assert reply.backend["answerer"] == "too_long" and "at most 50 characters" in reply.text


async def test_windows_count_per_key_and_reset_each_minute():
    now = [1_000_020.0]
    local = LocalFloodLimiter(clock=lambda: now[0])
    async with fresh_redis_prefix() as (url, prefix):
        redis = Redis.from_url(url)
        try:
            shared = RedisFloodLimiter(redis, prefix, clock=lambda: now[0])
            for limiter in (local, shared):
                now[0] = 1_000_020.0
                decisions = [await limiter.hit("ip:a", 3) for _ in range(4)]
                assert [d.allowed for d in decisions] == [True, True, True, False]
                assert decisions[-1].count == 4 and 0 < decisions[-1].retry_after <= 60
                assert (await limiter.hit("ip:b", 3)).allowed
                now[0] += 60
                assert (await limiter.hit("ip:a", 3)).count == 1
        finally:
            await redis.aclose()
