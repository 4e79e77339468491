"""Answer by quoting the documents: no LLM, nothing invented.

The answer is the 1–3 best supporting units (sentences, list items, table
rows) of the retrieved chunks, verbatim and in document order, so a price or
a time is always exactly what the business wrote. Units are scored by
IDF-weighted overlap with the question (their heading counts as context), a
bonus when they state the kind of fact asked for (a price for "how much"),
and the retrieval rank of their chunk; the few best are then re-scored by
embedding similarity, which is what lets a Chinese question find the right
sentence in an English document. The question is read both as written and
with its support words glossed into English (``agent.glossary``).
"""
from __future__ import annotations

import csv
import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from agent.answer import Answer
from agent.crosslingual import term_pair
from agent.glossary import Glossary
from agent.language import detect_language
from agent.lexical import TermWeights, question_cues, script_of, term_matches, terms, unit_cues
from agent.segment import Unit, UnitKind, segment
from config.types import Source
from rag.types import RetrievedChunk

logger = logging.getLogger(__name__)

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_TAMIL = re.compile(r"[\u0b80-\u0bff]")


class Embedder(Protocol):
    """The slice of ``rag.embedding`` we use; vectors are L2-normalised."""

    async def embed_query(self, text: str) -> np.ndarray: ...

    async def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass
class _Candidate:
    chunk_index: int
    unit: Unit
    lexical: float  # IDF-weighted share of question terms in the unit (heading terms at CONTEXT_CREDIT)
    score: float
    titled: float = 0.0  # share of the question its own heading covers (in full)
    similarity: float | None = None


CONTEXT_CREDIT = 0.75  # a term found only in the heading (often the FAQ question itself) counts most
RANK_WEIGHT = 0.15  # bonus for the top-ranked chunk, decaying with rank
CUE_WEIGHT = 0.25  # unit states the kind of fact asked for
FOCUS_WEIGHT = 3.0  # a follow-up's own terms against those inherited from the previous question
MISSING_CUE_PENALTY = 0.5  # unit states no fact of the kind asked for (no amount for "how much?")
SCRIPT_WEIGHT = 0.1  # unit is written in the question's script (quote English to English askers)
SIMILARITY_WEIGHT = 10.0  # per unit of cosine behind the best-embedded candidate (0.01 cosine = 0.1)
MIN_EXTRA_SHARE = 0.85  # a row, or a unit two away, joins the answer at this share of the best's lexical score
MIN_NEIGHBOUR_SHARE = 0.5  # the sentence right before/after the best joins at this share


class ExtractiveAnswerer:
    """Picks and quotes the best supporting units; see the module docstring."""

    name = "extractive"

    def __init__(
        self,
        embedder: Embedder | None = None,
        *,
        embed_candidates: int = 6,
        max_units: int = 3,
        cache_size: int = 4096,
        glossary: Glossary | None = None,
        detect: Callable[[str, str | None], str] = detect_language,
    ) -> None:
        self._embedder = embedder
        self._embed_candidates = embed_candidates
        self._max_units = max_units
        self._detect = detect
        self._glossary = glossary if glossary is not None else Glossary()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    async def answer(self, question: str, chunks: Sequence[RetrievedChunk], *, focus: str | None = None) -> Answer:
        candidates, readings = self._score_lexically(question, chunks, focus)
        if not candidates:
            return Answer(text="", language=None, sources=[], coverage=0.0)
        scripts = {script_of(term) for c in candidates for term in terms(_render(c.unit))}
        best_similarity = await self._rescore_semantically(question, chunks, candidates)
        candidates.sort(key=lambda c: c.score, reverse=True)
        best = candidates[0]
        chosen = self._with_context(best, candidates)
        chunk = chunks[best.chunk_index]
        quoted = "\n".join(_render(c.unit) for c in chosen)
        coverage = max(_coverage(weights, [c.unit for c in chosen], chunk.heading, scripts) for weights in readings)
        language = self._detect(quoted, chunk.language)  # the quote's own language, not the chunk's label
        logger.debug(
            "answer extracted",
            extra={"chunk_id": chunk.chunk_id, "units": len(chosen), "coverage": round(coverage, 3)},
        )
        return Answer(
            text=quoted,
            language=language,
            sources=[Source(document=chunk.document, chunk_id=chunk.chunk_id, score=chunk.score, text=quoted)],
            coverage=coverage,
            similarity=best.similarity if best.similarity is not None else best_similarity,
            chunk_rank=best.chunk_index,
            features={
                "best_lexical": best.lexical,
                "cue_match": float(bool(question_cues(question) & unit_cues(best.unit.text))),
                "units": float(len(chosen)),
                "cross_script": float(_script(quoted) != _script(question)),
            },
        )

    # -- scoring ---------------------------------------------------------------
    def _score_lexically(
        self, question: str, chunks: Sequence[RetrievedChunk], focus: str | None = None
    ) -> tuple[list[_Candidate], list[dict[str, float]]]:
        """Score every unit; returns the candidates and the term weights of each reading.

        The question is read as written and, if the glossary knows some of its
        words, with those words in English; a unit scores by the better reading,
        so a Chinese question matches a Chinese FAQ and an English price list alike.
        """
        glossed = self._glossary.translate(question) if self._glossary else question
        cues = question_cues(glossed) | question_cues(question)
        # Term-table rows ("班兰戚风 | Pandan chiffon") translate the business's words; they answer nothing.
        segmented = [(i, unit) for i, chunk in enumerate(chunks) for unit in segment(chunk.text, chunk.heading)
                     if unit.kind is not UnitKind.ROW or term_pair(unit.text) is None]
        # Rows are read with their heading and column names, so those count in full.
        vocabularies = [set(terms(_render(unit))) for _, unit in segmented]
        contexts = [set(terms(f"{unit.heading} {chunks[i].heading}")) for i, unit in segmented]
        question_script = _script(question)
        idf = TermWeights(vocabularies)
        # Words in a script no candidate is written in (Chinese over English documents)
        # are a language gap: they would lower every score alike and drown the other signals.
        scripts = {script_of(term) for vocabulary in vocabularies for term in vocabulary}
        # A follow-up's own words weigh more than those it inherited: "… the 1 kg cake — and the 2 kg one?"
        # must land on the 2 kg row, not on the 1 kg row the previous question asked about.
        focused = set(terms(focus)) | set(terms(self._glossary.translate(focus))) if focus else set()
        readings = []
        for reading in dict.fromkeys((question, glossed)):
            weights = {term: idf.weight(term) * (FOCUS_WEIGHT if term in focused else 1.0)
                       for term in dict.fromkeys(terms(reading))}
            reachable = sum(w for term, w in weights.items() if script_of(term) in scripts) or 1.0
            readings.append((weights, reachable))
        candidates = []
        for (chunk_index, unit), vocabulary, context in zip(segmented, vocabularies, contexts):
            lexical = max(_overlap(weights, vocabulary, context) / reachable for weights, reachable in readings)
            title = set(terms(unit.heading))
            titled = max(_overlap(weights, title, set()) / reachable for weights, reachable in readings)
            score = lexical + RANK_WEIGHT / (1.0 + chunk_index)
            if cues & unit_cues(unit.text):
                score += CUE_WEIGHT
            elif cues:  # asked "how much?", and the unit names no amount: it cannot be the answer
                score -= MISSING_CUE_PENALTY
            if _script(unit.text) == question_script:
                score += SCRIPT_WEIGHT
            candidates.append(_Candidate(chunk_index, unit, lexical, score, titled=titled))
        return candidates, [weights for weights, _ in readings]

    async def _rescore_semantically(
        self, question: str, chunks: Sequence[RetrievedChunk], candidates: list[_Candidate]
    ) -> float | None:
        """Embed the few best candidates (with their heading) and reward the closest."""
        if self._embedder is None or self._embed_candidates <= 0:
            return None
        shortlist = _shortlist(candidates, chunks, self._embed_candidates, _script(question))
        passages = [_with_heading(c.unit, chunks[c.chunk_index].heading) for c in shortlist]
        query_vector = np.asarray(await self._embedder.embed_query(question), dtype=np.float32)
        passage_vectors = await self._embed_passages(passages)
        similarities = passage_vectors @ query_vector
        top = float(similarities.max())
        for candidate, similarity in zip(shortlist, similarities):
            candidate.similarity = float(similarity)
            candidate.score += SIMILARITY_WEIGHT * (float(similarity) - top)
        for candidate in candidates:
            if candidate.similarity is None:  # not shortlisted: behind every shortlisted one
                candidate.score -= SIMILARITY_WEIGHT
        return top

    async def _embed_passages(self, passages: list[str]) -> np.ndarray:
        """Embed with a bounded per-answerer cache: popular answers are asked again and again."""
        missing = list(dict.fromkeys(p for p in passages if p not in self._cache))
        if missing:
            vectors = np.asarray(await self._embedder.embed_passages(missing), dtype=np.float32)
            for passage, vector in zip(missing, vectors):
                self._cache[passage] = vector
        for passage in passages:
            self._cache.move_to_end(passage)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return np.stack([self._cache[p] for p in passages])

    def _with_context(self, best: _Candidate, candidates: list[_Candidate]) -> list[_Candidate]:
        """The best unit plus close, relevant neighbours from the same block, in document order."""
        same_block = sorted(
            (c for c in candidates if c.chunk_index == best.chunk_index and c.unit.block == best.unit.block),
            key=lambda c: c.unit.position,
        )
        chosen = [best]
        if _is_lead_in(best.unit):  # "Members get:" / "We accept:": what follows is the content, whole
            return [best, *_list_after(best, candidates)]
        section = [c for c in same_block if c.unit.heading == best.unit.heading]
        # Rows are alternatives ("0.5 kg / 1 kg / 2 kg"): one answers, never the whole table.
        if best.titled >= TITLED and best.unit.kind is not UnitKind.ROW and 1 < len(section) <= MAX_LIST_UNITS:
            # The question is the heading ("who is your data protection officer?"): the section under
            # it is the answer (name, email, address), not one line of it.
            return section
        for candidate in sorted(same_block, key=lambda c: abs(c.unit.position - best.unit.position)):
            if len(chosen) >= self._max_units:
                break
            distance = abs(candidate.unit.position - best.unit.position)
            if candidate is best or distance > 2:
                continue
            # Rows and list items are parallel alternatives (weekday vs weekend): only equally relevant ones join.
            # Prose next to the best sentence usually continues it, so a lower bar applies.
            parallel = candidate.unit.kind is not UnitKind.SENTENCE
            share = MIN_EXTRA_SHARE if parallel or distance > 1 else MIN_NEIGHBOUR_SHARE
            relevant = best.lexical > 0 and candidate.lexical >= share * best.lexical
            lead_in = candidate.unit.position == best.unit.position - 1 and candidate.unit.text.rstrip().endswith(
                (":", "：")
            )
            if relevant or lead_in:
                chosen.append(candidate)
        chosen.sort(key=lambda c: c.unit.position)
        return _contiguous(chosen, best)


MAX_LIST_UNITS = 8  # a list quoted whole after its lead-in, or a section its heading answers
TITLED = 0.9  # a heading covering (nearly) all of the question is what was asked about: quote its section


def _is_lead_in(unit: Unit) -> bool:
    return unit.text.rstrip().endswith((":", "："))


def _list_after(lead_in: _Candidate, candidates: list[_Candidate]) -> list[_Candidate]:
    """The units right after a lead-in in its chunk, up to the end of the list (a sentence that
    closes with a full stop after items, or a new heading), at most ``MAX_LIST_UNITS``."""
    following = sorted((c for c in candidates if c.chunk_index == lead_in.chunk_index
                        and c.unit.position > lead_in.unit.position), key=lambda c: c.unit.position)
    taken: list[_Candidate] = []
    expected = lead_in.unit.position + 1
    for candidate in following:
        if candidate.unit.position != expected or candidate.unit.heading != lead_in.unit.heading:
            break
        taken.append(candidate)
        expected += 1
        if len(taken) >= MAX_LIST_UNITS or candidate.unit.text.rstrip().endswith((".", "。")) and len(taken) > 1:
            break
    return taken


CROSS_SCRIPT_UNITS = 2  # units per chunk in another script than the question, embedded besides the best


def _shortlist(candidates: list[_Candidate], chunks: Sequence[RetrievedChunk], size: int,
               question_script: str) -> list[_Candidate]:
    """The ``size`` best candidates by lexical score, plus the best few of every chunk written in
    another script than the question. Word overlap cannot see across scripts (a Chinese question,
    an English price row), so those units would never reach the embedding comparison that can."""
    ranked = sorted(candidates, key=lambda c: c.score, reverse=True)
    chosen = ranked[:size]
    taken = {id(c) for c in chosen}
    per_chunk: dict[int, int] = {}
    for candidate in ranked:
        if id(candidate) in taken or _script(chunks[candidate.chunk_index].text) == question_script:
            continue
        if per_chunk.get(candidate.chunk_index, 0) >= CROSS_SCRIPT_UNITS:
            continue
        per_chunk[candidate.chunk_index] = per_chunk.get(candidate.chunk_index, 0) + 1
        chosen.append(candidate)
    return chosen


def _contiguous(chosen: list[_Candidate], best: _Candidate) -> list[_Candidate]:
    """Drop picks separated from the best unit by a unit we did not pick (keeps the quote coherent)."""
    positions = [c.unit.position for c in chosen]
    index = positions.index(best.unit.position)
    start = index
    while start > 0 and positions[start - 1] >= positions[start] - 2:
        start -= 1
    end = index
    while end + 1 < len(positions) and positions[end + 1] <= positions[end] + 2:
        end += 1
    return chosen[start : end + 1]


_RECORD = re.compile(r"^(?:[^;:]{1,40}: [^;]*)(?:; [^;:]{1,40}: [^;]*)+$")  # "code: X; price_sgd: 48.00; …"


def _render_record(text: str) -> str:
    """A spreadsheet row as ingestion writes it ("service: …; standard_price_sgd: 48.00") with its
    column names readable and its amounts written as amounts."""
    fields = []
    for field in text.split("; "):
        name, _, value = field.partition(": ")
        fields.append(f"{_header_label(name)}: {_cell(name, value.strip())}")
    return "; ".join(fields)


def _render(unit: Unit) -> str:
    """Unit text as the customer reads it; table rows pair each cell with its header."""
    text = _render_record(unit.text) if _RECORD.match(unit.text) else unit.text
    if unit.kind is not UnitKind.ROW:
        return text
    if not unit.table_header:
        return f"{unit.heading} — {text}" if unit.heading and unit.heading not in text else text
    if "|" in unit.text:
        header = [h.strip() for h in unit.table_header.split("|")]
        cells = [c.strip() for c in unit.text.split("|")]
    else:
        header = next(csv.reader([unit.table_header]))
        cells = next(csv.reader([unit.text]))
    if len(header) != len(cells):
        return unit.text
    pairs = ", ".join(f"{_header_label(h)}: {_cell(h, c)}" for h, c in zip(header, cells) if c)
    return f"{unit.heading} — {pairs}" if unit.heading else pairs


_BARE_AMOUNT = re.compile(r"\d+(?:\.\d{1,2})?")
_MONEY_HEADER = re.compile(r"sgd|s\$|\$|price|fee|cost|charge|amount|rate|deposit", re.IGNORECASE)
_NOT_MONEY_HEADER = re.compile(r"min|minute|hour|day|week|month|year|qty|quantity|count|size|age|%|percent|weight|"
                               r"\bno\b|number|code|id\b", re.IGNORECASE)


def _header_label(header: str) -> str:
    """``standard_price_sgd`` -> ``standard price sgd``: a CSV column name as a customer reads it."""
    return header.replace("_", " ").strip()


def _cell(header: str, cell: str) -> str:
    """A bare number in a money column is an amount: write it as one (``48.00`` -> ``S$48.00``)."""
    if _BARE_AMOUNT.fullmatch(cell) and _MONEY_HEADER.search(header) and not _NOT_MONEY_HEADER.search(header):
        return f"S${cell}"
    return cell


def _script(text: str) -> str:
    if _HAN.search(text):
        return "han"
    if _TAMIL.search(text):
        return "tamil"
    return "latin"


def _with_heading(unit: Unit, chunk_heading: str) -> str:
    heading = unit.heading or chunk_heading
    text = _render(unit)
    return f"{heading}: {text}" if heading and heading not in text else text


def _coverage(weights: dict[str, float], units: list[Unit], chunk_heading: str, scripts: set[str]) -> float:
    """IDF-weighted share of the question's terms in the quote (headings at part credit).

    Terms in a script none of the candidates is written in (Tamil words over
    English documents) are a language gap, not missing content, so they are
    left out; a term in a present script that the quote lacks ("Peru") counts
    against it.
    """
    weights = {t: w for t, w in weights.items() if script_of(t) in scripts}
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    vocabulary = set().union(*(terms(_render(u)) for u in units))
    context = set().union(*(terms(f"{u.heading} {u.table_header} {chunk_heading}") for u in units))
    return _overlap(weights, vocabulary, context) / total


def _overlap(weights: dict[str, float], vocabulary: set[str], context: set[str]) -> float:
    hit = 0.0
    for term, weight in weights.items():
        if term_matches(term, vocabulary):
            hit += weight
        elif term_matches(term, context):
            hit += CONTEXT_CREDIT * weight
    return hit
