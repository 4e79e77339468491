"""Everything a prompt may hold, fitted into a token budget.

Instructions, the customer's profile, the rolling summary, the recent turns, the
retrieved chunks and the question each get their own budget, counted with the same
tiktoken encoding as the chunker (``rag.tokens.TokenCounter``). What does not fit is
dropped oldest-first (turns, summary lines, profile facts) or lowest-ranked-first
(chunks), so a very long conversation costs the same as a short one. The LLM answerer
builds its prompt from :class:`AssembledContext`; the extractive path uses the fitted
turns and summary that reach ``AgentRequest``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from config.types import Turn
from rag.tokens import TokenCounter
from rag.types import RetrievedChunk

MESSAGE_OVERHEAD = 4  # tokens a chat API adds around each message (role and separators)
SEPARATOR = "\n\n"
ROLE_LABELS = {"user": "Customer", "assistant": "Assistant", "staff": "Staff"}
SOURCES_HEADING = "Sources:"


@dataclass(frozen=True)
class ContextBudgets:
    instructions: int = 600
    profile: int = 150
    summary: int = 300
    turns: int = 1200
    chunks: int = 2000
    question: int = 400

    @property
    def total(self) -> int:
        return self.instructions + self.profile + self.summary + self.turns + self.chunks + self.question


@dataclass
class AssembledContext:
    instructions: str
    profile: str
    summary: str
    turns: list[Turn]
    chunks: list[RetrievedChunk]
    question: str
    tokens: dict[str, int] = field(default_factory=dict)  # per section, as counted
    dropped: dict[str, int] = field(default_factory=dict)  # items left out per section

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens.values())

    def system_prompt(self) -> str:
        """Instructions, profile, summary and sources: the system message of a chat prompt."""
        return SEPARATOR.join(part for part in (self.instructions, self.profile, self.summary,
                                                render_chunks(self.chunks)) if part)

    def messages(self) -> list[dict[str, str]]:
        """Chat-completion messages: the system prompt, the recent turns, then the question."""
        out = [{"role": "system", "content": self.system_prompt()}]
        for turn in self.turns:
            out.append({"role": "assistant" if turn.role != "user" else "user",
                        "content": turn.text if turn.role != "staff" else f"(staff) {turn.text}"})
        out.append({"role": "user", "content": self.question})
        return out

    def render(self) -> str:
        """The whole context as one text (for completion-style prompts and for checking the budget)."""
        return SEPARATOR.join(part for part in (self.system_prompt(), render_turns(self.turns),
                                                f"Customer: {self.question}") if part)


def render_turns(turns: Sequence[Turn]) -> str:
    return "\n".join(f"{ROLE_LABELS.get(t.role, t.role)}: {t.text}" for t in turns)


def render_chunks(chunks: Sequence[RetrievedChunk]) -> str:
    if not chunks:
        return ""
    return f"{SOURCES_HEADING}\n" + "\n".join(_chunk_block(i, c) for i, c in enumerate(chunks, 1))


def _chunk_block(number: int, chunk: RetrievedChunk) -> str:
    return f"[{number}] {chunk.document}: {chunk.text}"


class ContextAssembler:
    def __init__(self, counter: TokenCounter, budgets: ContextBudgets | None = None) -> None:
        self._counter = counter
        self.budgets = budgets or ContextBudgets()

    def count(self, text: str) -> int:
        return self._counter.count(text)

    def assemble(
        self,
        *,
        instructions: str = "",
        profile_lines: Sequence[str] = (),
        summary: str | None = None,
        turns: Sequence[Turn] = (),
        chunks: Sequence[RetrievedChunk] = (),
        question: str = "",
    ) -> AssembledContext:
        b = self.budgets
        dropped: dict[str, int] = {}
        instructions_text = self.truncate(instructions, b.instructions, keep="start")
        profile_text, dropped["profile"] = self.fit_lines("Customer profile:", profile_lines, b.profile,
                                                          keep="start")
        summary_text, dropped["summary"] = self.fit_summary(summary, b.summary)
        kept_turns = self.fit_turns(turns, b.turns)
        dropped["turns"] = len(turns) - len(kept_turns)
        kept_chunks = self.fit_chunks(chunks, b.chunks)
        dropped["chunks"] = len(chunks) - len(kept_chunks)
        question_text = self.truncate(question, b.question, keep="start")
        context = AssembledContext(instructions_text, profile_text, summary_text, kept_turns, kept_chunks,
                                   question_text, dropped=dropped)
        context.tokens = {
            "instructions": self.count(instructions_text),
            "profile": self.count(profile_text),
            "summary": self.count(summary_text),
            "turns": self.turn_tokens(kept_turns),
            "chunks": self.count(render_chunks(kept_chunks)),
            "question": self.count(question_text),
        }
        while self.count(context.render()) > b.total and (context.turns or context.chunks):
            # Joining sections can merge or split a token at a seam; give the slack back from history.
            (context.turns if context.turns else context.chunks).pop(0 if context.turns else -1)
            context.tokens["turns"] = self.turn_tokens(context.turns)
            context.tokens["chunks"] = self.count(render_chunks(context.chunks))
        return context

    # ------------------------------------------------------------ per-section fitting
    def truncate(self, text: str, budget: int, *, keep: str) -> str:
        """``text`` cut to ``budget`` tokens, keeping its start or its end."""
        tokens = self._counter.encode(text)
        if len(tokens) <= budget:
            return text
        if budget <= 0:
            return ""
        piece = tokens[:budget] if keep == "start" else tokens[-budget:]
        cut = self._counter.decode(piece)
        while cut and self.count(cut) > budget:  # decoding a partial character can re-encode longer
            cut = cut[:-1] if keep == "start" else cut[1:]
        return cut

    def fit_lines(self, header: str, lines: Sequence[str], budget: int, *, keep: str) -> tuple[str, int]:
        """Whole lines under an optional header; ``keep="end"`` drops the oldest (first) lines,
        ``keep="start"`` the last ones. Lines are costed one by one, then the result is checked whole."""
        def text_of(items: list[str]) -> str:
            return "\n".join(([header] if header and items else []) + items)

        ordered = list(reversed(lines)) if keep == "end" else list(lines)
        used = self.count(header) + 1 if header else 0
        chosen: list[str] = []
        for line in ordered:
            cost = self.count(line) + 1  # the line and its newline
            if used + cost > budget:
                break
            chosen.append(line)
            used += cost
        kept = list(reversed(chosen)) if keep == "end" else chosen
        while kept and self.count(text_of(kept)) > budget:  # a token merged across a seam: drop one more
            kept.pop(0 if keep == "end" else -1)
        if not kept and lines:  # not even one whole line fits: the most important one, cut
            line = lines[-1] if keep == "end" else lines[0]
            head = self.count(header + "\n") if header else 0
            cut = self.truncate(line, budget - head, keep="end" if keep == "end" else "start")
            kept = [cut] if cut else []
            if kept and self.count(text_of(kept)) > budget:
                kept = []
        return text_of(kept), len(lines) - len(kept)

    def fit_summary(self, summary: str | None, budget: int | None = None) -> tuple[str, int]:
        """The newest lines of a summary that fit; a first line ending in ":" is kept as its heading."""
        budget = self.budgets.summary if budget is None else budget
        lines = [line for line in (summary or "").splitlines() if line.strip()]
        header = lines.pop(0) if lines and lines[0].rstrip().endswith(":") else ""
        return self.fit_lines(header, lines, budget, keep="end")

    def turn_tokens(self, turns: Sequence[Turn]) -> int:
        return sum(self.count(f"{ROLE_LABELS.get(t.role, t.role)}: {t.text}") + MESSAGE_OVERHEAD for t in turns)

    def fit_turns(self, turns: Sequence[Turn], budget: int | None = None) -> list[Turn]:
        """The newest turns that fit; if even the newest does not, its end, cut to fit."""
        budget = self.budgets.turns if budget is None else budget
        kept: list[Turn] = []
        used = 0
        for turn in reversed(turns):
            cost = self.turn_tokens([turn])
            if used + cost > budget:
                if not kept:
                    label = self.count(f"{ROLE_LABELS.get(turn.role, turn.role)}: ") + MESSAGE_OVERHEAD
                    text = self.truncate(turn.text, budget - label - 1, keep="end")
                    if text and self.turn_tokens([Turn(turn.role, text)]) <= budget:
                        kept.append(Turn(turn.role, text))
                break
            kept.append(turn)
            used += cost
        return list(reversed(kept))

    def fit_chunks(self, chunks: Sequence[RetrievedChunk], budget: int | None = None) -> list[RetrievedChunk]:
        """The best-ranked chunks that fit, in rank order (a long one is skipped for shorter ones below it);
        the top one cut to fit if it alone is too long."""
        budget = self.budgets.chunks if budget is None else budget
        if not chunks:
            return []
        used = self.count(SOURCES_HEADING) + 1
        kept: list[RetrievedChunk] = []
        for chunk in chunks:
            cost = self.count(_chunk_block(len(kept) + 1, chunk)) + 1
            if used + cost <= budget:
                kept.append(chunk)
                used += cost
        while kept and self.count(render_chunks(kept)) > budget:  # seams: drop the lowest-ranked
            kept.pop()
        if not kept:
            top = chunks[0]
            overhead = self.count(render_chunks([_with_text(top, "")]))
            text = self.truncate(top.text, budget - overhead - 1, keep="start")
            if text and self.count(render_chunks([_with_text(top, text)])) <= budget:
                kept.append(_with_text(top, text))
        return kept


def _with_text(chunk: RetrievedChunk, text: str) -> RetrievedChunk:
    return replace(chunk, text=text)
