"""Which backends answer, chosen from settings: through the real container, and through
``supportlah ask --json`` in a separate process, against local fakes of the LLM and Cohere APIs."""
from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from agent.llm import LLMAgent
from agent.llm_fallbacks import FallbackCounter
from agent.llm_usage import LLMUsage
from config.settings import load_settings
from config.sql import session_factory
from rag.cohere_rerank import CohereReranker
from rag.edge_index import EdgeIndex
from rag.qdrant_server import QdrantServerIndex
from rag.rerank import LocalReranker
from supportlah.backends import build_agent, build_index, build_reranker, prompt_budgets
from supportlah.conversation import ask_once
from tests.fakes.cohere_api import FakeCohereAPI
from tests.fakes.openai_api import Completion, FakeChatAPI, json_content
from tests.harness import SentEvents, drain, running_container, web_message

PRICES = """# Aircon Services and Prices

## Chemical Wash

| Code | Property type | Price per unit |
|------|---------------|----------------|
| CW-HDB | HDB flat | $80 |
| CW-CONDO | Condominium | $90 |
"""
WARRANTY = "# Warranty\n\nEvery service carries a 90-day workmanship warranty.\n"
QUESTION = "How much is a chemical wash for an HDB flat?"


def cite_the_price(body: dict) -> Completion:
    number = re.search(r'<source id="(\d+)"[^>]*>\n[^<]*CW-HDB', body["messages"][0]["content"]).group(1)
    return Completion(content=json_content(answer="A chemical wash for an HDB flat is $80 per unit.",
                                           citations=[int(number)], confidence=0.92, needs_human=False,
                                           handoff_reason=None), usage=(900, 30))


@pytest.fixture
def kb(tmp_path: Path) -> Path:
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "prices.md").write_text(PRICES, encoding="utf-8")
    (folder / "warranty.md").write_text(WARRANTY, encoding="utf-8")
    return folder


def test_without_vendor_settings_every_seam_is_embedded_and_counted(tmp_path: Path):
    settings = load_settings(_env_file=None, data_dir=tmp_path)
    counter = FallbackCounter()
    closers: list = []
    extractive = object()
    assert isinstance(build_index(settings, fallbacks=counter), EdgeIndex)
    assert isinstance(build_reranker(settings, closers=closers, fallbacks=counter), LocalReranker)
    assert build_agent(settings, retriever=object(), extractive_agent=extractive, closers=closers,
                       fallbacks=counter) is extractive
    assert counter.fallback_counts() == {"answerer": {"not_configured": 1}, "index": {"not_configured": 1},
                                         "reranker": {"not_configured": 1}}
    assert closers == []


async def test_vendor_settings_select_the_production_backends(tmp_path: Path):
    settings = load_settings(_env_file=None, data_dir=tmp_path, qdrant_url="http://127.0.0.1:6333",
                             cohere_api_key="k", llm_base_url="http://127.0.0.1:11434/v1", llm_model="qwen2.5:7b")
    counter = FallbackCounter()
    closers: list = []
    index = build_index(settings, fallbacks=counter)
    reranker = build_reranker(settings, closers=closers, fallbacks=counter)
    agent = build_agent(settings, retriever=object(), extractive_agent=object(), closers=closers, fallbacks=counter)
    try:
        assert isinstance(index, QdrantServerIndex) and index.collection == "supportlah_chunks"
        assert isinstance(reranker, CohereReranker) and reranker.name == "cohere:rerank-multilingual-v3.0"
        assert isinstance(agent, LLMAgent) and agent.name == "llm:qwen2.5:7b"
        assert counter.fallback_counts() == {}
    finally:
        for close in closers:
            await close()
        await index.close()


def test_prompt_budgets_shrink_to_the_models_context(tmp_path: Path):
    roomy = prompt_budgets(load_settings(_env_file=None, data_dir=tmp_path))
    small = prompt_budgets(load_settings(_env_file=None, data_dir=tmp_path, llm_context_tokens=4096,
                                         llm_max_output_tokens=500))
    assert roomy.chunks == 2000 and roomy.turns == 1200
    assert small.chunks < roomy.chunks and small.turns < roomy.turns
    assert small.profile + small.summary + small.turns + small.chunks + small.question <= 4096 - 500 - 2300
    with pytest.raises(ValueError, match="LLM_CONTEXT_TOKENS"):
        prompt_budgets(load_settings(_env_file=None, data_dir=tmp_path, llm_context_tokens=2048,
                                     llm_max_output_tokens=1800))


async def test_the_container_answers_with_the_llm_records_usage_and_the_cli_reports_it(tmp_path: Path, kb: Path):
    async with FakeChatAPI() as llm, FakeCohereAPI() as co:
        llm.default(cite_the_price)
        vendor = {"llm_base_url": llm.base_url, "llm_api_key": "llm-key", "cohere_api_key": "cohere-key",
                  "cohere_base_url": co.base_url}
        settings = load_settings(_env_file=None, data_dir=tmp_path / "data", **vendor)
        async with running_container(settings, start_queue=False) as container:
            await container.ingestor.ingest([kb])
            result = await ask_once(container, QUESTION, user="cli-user")
            assert result["backend"] == {"answerer": "llm:gpt-4o-mini", "reranker": "cohere:rerank-multilingual-v3.0"}
            assert result["answer"] == "A chemical wash for an HDB flat is $80 per unit."
            assert result["sources"][0]["document"] == "prices.md" and not result["escalate"]
            assert container.fallbacks.fallback_counts() == {"index": {"not_configured": 1}}
            async with session_factory(container.engine)() as session:
                rows = list((await session.execute(select(LLMUsage))).scalars())
            assert [(r.prompt_tokens, r.completion_tokens, r.channel, r.outcome) for r in rows] == [
                (900, 30, "cli", "ok")]
            assert rows[0].cost_usd == pytest.approx((900 * 0.15 + 30 * 0.60) / 1e6)

            sent = SentEvents()  # web chat: the answer streams as deltas, then the reply replaces them
            sent.attach(container, "visitor-llm")
            accepted = await container.ingress.accept(web_message("visitor-llm", QUESTION))
            await drain(container)
            deltas = [e["text"] for _, e in sent.events
                      if e["type"] == "delta" and e["message_id"] == accepted.message_id]
            reply = await container.store.get_reply(accepted.message_id)
            assert len(deltas) > 1 and "".join(deltas) == reply.text == "A chemical wash for an HDB flat is $80 per unit."

        env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTLAH_")}
        env.update({f"SUPPORTLAH_{k.upper()}": v for k, v in vendor.items()},
                   SUPPORTLAH_DATA_DIR=str(tmp_path / "data"), SUPPORTLAH_LOG_LEVEL="WARNING")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "supportlah.cli", "ask", "--json", QUESTION, env=env, cwd=str(tmp_path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 240)
        assert process.returncode == 0, stderr.decode()[-2000:]
        printed = json.loads(stdout.decode()[stdout.decode().index("{"):])
        assert printed["backend"] == {"answerer": "llm:gpt-4o-mini", "reranker": "cohere:rerank-multilingual-v3.0"}
        assert printed["answer"] == "A chemical wash for an HDB flat is $80 per unit."
        assert len(llm.requests) == 3 and len(co.requests) == 3
        assert llm.errors == [] and co.errors == []


async def test_without_an_llm_the_container_answers_extractively(tmp_path: Path, kb: Path):
    settings = load_settings(_env_file=None, data_dir=tmp_path / "data")
    async with running_container(settings, start_queue=False) as container:
        await container.ingestor.ingest([kb])
        result = await ask_once(container, QUESTION, user="cli-user")
        assert result["backend"] == {"answerer": "extractive", "reranker": "local-blend"}
        assert "$80" in result["answer"]
        assert set(container.fallbacks.fallback_counts()) == {"answerer", "reranker", "index"}
