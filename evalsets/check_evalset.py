"""Checks one evaluation set (a KB folder plus its questions) before anyone relies on it.

A set is a folder with ``kb/`` (the documents to ingest), ``questions.jsonl`` and, optionally,
``absent_terms.json`` (question id -> regular expressions that must occur nowhere in the KB,
proving the KB is silent on an unanswerable question) and ``computed_values.json`` (question
id -> {value: {"expr": arithmetic, "operands": [values that must occur in the expected docs]}}
for must_contain values that are computed rather than quoted). A set without these files that
keeps ABSENT/DERIVED tables in its own check_questions.py (the physio-clinic set) has those
literals read instead; the script is parsed, never run.

What it checks, and why:
- the schema of every question (fields, languages, kinds, followup context, behaviours), so a
  harness can run the set without special cases;
- that every must_contain value occurs in at least one expected document after the grading
  normalisation (S$35 = $35 = SGD 35 = 35新元, 1,280 = 1280, 2kg = 2 kg), so a "right" answer
  is really grounded in the KB; CSV price columns count as S$ amounts;
- that computed values follow from their operands and the operands are in the documents;
- that ``fact`` questions are answered by a document in the question's language and
  ``cross_lingual`` ones only by documents in another language (document languages are
  detected from the script and, for Malay, from common words);
- that the key terms of every unanswerable question occur nowhere in the KB.
It then prints KB statistics and the question counts by language and kind.

Usage: python evalsets/check_evalset.py DIR [DIR ...] [--absent FILE] [--computed FILE]
(--absent/--computed override the files in DIR; they only make sense with one DIR).
Needs pypdf and python-docx. Exit status 1 if any set has errors.
"""
from __future__ import annotations

import argparse
import ast
import collections
import csv
import html
import io
import json
import operator
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

LANGS = ("en", "zh", "ms", "ta", "singlish")
KINDS = ("fact", "cross_lingual", "singlish", "unanswerable", "escalation_request", "injection", "followup", "chitchat")
ANSWERABLE_KINDS = {"fact", "cross_lingual", "singlish", "followup"}
BEHAVIOUR = {"unanswerable": "escalate", "escalation_request": "escalate", "injection": "refuse",
             "chitchat": "smalltalk"}
REQUIRED = ("id", "lang", "question", "answerable", "expected_docs", "must_contain", "kind", "reference_answer")
OPTIONAL = ("context", "expected_behaviour")
FORMATS = {".md", ".csv", ".html", ".pdf", ".docx", ".txt"}
# Frequent Malay words that are rare in English text; a document where they dominate is Malay.
MALAY_WORDS = {"dan", "untuk", "anda", "yang", "tidak", "boleh", "kami", "dengan", "sila", "atau", "akan", "ini",
               "dalam", "kepada", "hari", "sebelum", "selepas", "harga", "kedai", "klinik", "satu", "dua", "pukul"}
ENGLISH_WORDS = {"the", "and", "to", "of", "for", "you", "is", "are", "with", "our", "in", "on", "we", "your", "a"}


# ----------------------------------------------------------------------------- text
def extract_text(path: Path) -> str:
    """Plain text of one KB document, roughly as an ingester would see it."""
    suffix = path.suffix.lower()
    if suffix in (".md", ".txt"):
        return path.read_text(encoding="utf-8")
    if suffix == ".csv":
        return _csv_text(path.read_text(encoding="utf-8"))
    if suffix == ".html":
        raw = path.read_text(encoding="utf-8")
        raw = re.sub(r"(?is)<(script|style)\b[^>]*>.*?</\1>", " ", raw)
        raw = re.sub(r"(?s)<!--.*?-->", " ", raw)
        return html.unescape(re.sub(r"<[^>]+>", " ", raw))
    if suffix == ".docx":
        import docx
        document = docx.Document(str(path))
        parts = [p.text for p in document.paragraphs]
        for table in document.tables:
            parts.extend(" | ".join(cell.text for cell in row.cells) for row in table.rows)
        return "\n".join(parts)
    if suffix == ".pdf":
        from pypdf import PdfReader
        return "\n".join(page.extract_text() or "" for page in PdfReader(str(path)).pages)
    raise ValueError(f"unsupported document format: {path.name}")


def _csv_text(raw: str) -> str:
    """One line per row; numbers in price columns (header mentions price or sgd) become S$ amounts,
    because that is what they mean and how graders write them."""
    rows = list(csv.reader(io.StringIO(raw)))
    if not rows:
        return ""
    header = [h.lower() for h in rows[0]]
    money = [("price" in h or "sgd" in h or "fee" in h) for h in header]
    lines = [" | ".join(rows[0])]
    for row in rows[1:]:
        cells = []
        for i, cell in enumerate(row):
            is_money = i < len(money) and money[i] and re.fullmatch(r"\d+(?:\.\d+)?", cell.strip())
            cells.append(f"S${cell.strip()}" if is_money else cell)
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def normalise(text: str) -> str:
    """The grading normalisation, applied to documents and to must_contain values alike."""
    text = text.replace("**", "").replace("\u00a0", " ")
    text = re.sub(r"(?<![\d.,])(\d{1,3})((?:,\d{3})+)(?![\d,])", lambda m: m.group(1) + m.group(2).replace(",", ""), text)
    text = re.sub(r"(?:S\$|SGD|\$)\s*(?=\d)", "S$", text, flags=re.I)
    text = re.sub(r"(\d+(?:\.\d+)?)\s*新元", r"S$\1", text)
    text = re.sub(r"(\d)\s*kg\b", r"\1 kg", text, flags=re.I)
    return re.sub(r"\s+", " ", text).lower()


def needle_pattern(value: str) -> re.Pattern[str]:
    """Numbers match on number boundaries (15 is not 150, 12 is not 12.50, but S$62 is S$62.00)."""
    n = normalise(value).strip()
    pat = re.escape(n)
    if re.match(r"\d", n):
        pat = r"(?<![\d.])" + pat
    if re.search(r"\d$", n):
        pat += r"(?:\.0+)?" if "." not in n.split("$")[-1] else ""
        pat += r"(?!\d)(?!\.\d)"
    return re.compile(pat)


def detect_language(text: str) -> str:
    cjk = len(re.findall(r"[\u4e00-\u9fff]", text))
    tamil = len(re.findall(r"[\u0b80-\u0bff]", text))
    latin = len(re.findall(r"[A-Za-z]", text))
    if tamil > latin * 0.3:
        return "ta"
    if cjk > latin * 0.15:
        return "zh"
    words = re.findall(r"[a-z]+", text.lower())
    malay = sum(w in MALAY_WORDS for w in words)
    english = sum(w in ENGLISH_WORDS for w in words)
    return "ms" if malay > english else "en"


def evaluate(expr: str) -> float:
    """Arithmetic only (+ - * / and parentheses on numbers): computed values are simple sums."""
    ops = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return ops[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        raise ValueError(f"not simple arithmetic: {expr!r}")

    return walk(ast.parse(expr, mode="eval"))


def amount(value: str) -> float:
    digits = re.sub(r"[^\d.]", "", normalise(value))
    return float(digits) if digits else float("nan")


# ----------------------------------------------------------------------------- checks
@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class KnowledgeBase:
    raw: dict[str, str]
    text: dict[str, str]
    lang: dict[str, str]

    @classmethod
    def load(cls, folder: Path) -> "KnowledgeBase":
        raw = {p.name: extract_text(p) for p in sorted(folder.iterdir()) if p.is_file()}
        return cls(raw=raw, text={k: normalise(v) for k, v in raw.items()},
                   lang={k: detect_language(v) for k, v in raw.items()})

    def holds(self, doc: str, value: str) -> bool:
        return needle_pattern(value).search(self.text[doc]) is not None


def check_question(q: dict, kb: KnowledgeBase, absent: dict, computed: dict, seen: dict, rep: Report) -> None:
    qid = q.get("id", "?")
    err, warn = (lambda m: rep.errors.append(f"{qid}: {m}")), (lambda m: rep.warnings.append(f"{qid}: {m}"))
    for key in REQUIRED:
        if key not in q:
            err(f"missing field {key}")
    unknown = set(q) - set(REQUIRED) - set(OPTIONAL)
    if unknown:
        err(f"unknown fields {sorted(unknown)}")
    if not re.fullmatch(r"[a-z]+-\d{3}", str(qid)):
        err("id should look like xx-001")
    if qid in seen["ids"]:
        err("duplicate id")
    seen["ids"].add(qid)
    kind, lang = q.get("kind"), q.get("lang")
    if kind not in KINDS:
        err(f"unknown kind {kind!r}")
    if lang not in LANGS:
        err(f"unknown lang {lang!r}")
    question = q.get("question")
    if not isinstance(question, str) or not question.strip():
        err("empty question")
    elif question in seen["texts"]:
        err("duplicate question text")
    seen["texts"].add(question)
    if not isinstance(q.get("reference_answer"), str) or not q["reference_answer"].strip():
        err("empty reference_answer")
    if kind == "singlish" and lang != "singlish":
        err("kind singlish needs lang singlish")

    context = q.get("context")
    if kind == "followup":
        if isinstance(context, list):
            if not (1 <= len(context) <= 2 and all(isinstance(c, str) and c.strip() for c in context)):
                err("context must be a string or a list of 1-2 non-empty strings")
            elif len(context) == 1:
                warn("one earlier turn should be a plain string")
        elif not (isinstance(context, str) and context.strip()):
            err("followup without context")
    elif context is not None:
        err("context on a question that is not a followup")

    answerable = q.get("answerable")
    if answerable is not (kind in ANSWERABLE_KINDS):
        err(f"answerable={answerable!r} does not fit kind {kind}")
    if kind in BEHAVIOUR:
        if q.get("expected_behaviour") != BEHAVIOUR[kind]:
            err(f"expected_behaviour should be {BEHAVIOUR[kind]!r}")
    elif "expected_behaviour" in q:
        err("expected_behaviour on an answerable question")

    docs, must = q.get("expected_docs", []), q.get("must_contain", [])
    if not isinstance(docs, list) or not isinstance(must, list) or not all(isinstance(m, str) and m for m in must):
        err("expected_docs and must_contain must be lists (of non-empty strings)")
        return
    missing_docs = [d for d in docs if d not in kb.text]
    if missing_docs:
        err(f"unknown expected_docs {missing_docs}")
    if answerable:
        if not docs or not 1 <= len(must) <= 3:
            err("an answerable question needs expected_docs and 1-3 must_contain values")
    elif docs or must:
        err("a question that is not answerable has expected_docs or must_contain")
    if lang in ("zh", "ms", "ta"):
        for m in must:
            if re.search(r"S\$|SGD|\$", m):
                err(f"{lang} must_contain {m!r} should use bare digits")
    if missing_docs:
        return

    # languages: fact = same language as the question, cross_lingual = another language
    qlang = "en" if lang == "singlish" else lang
    doc_langs = {d: kb.lang[d] for d in docs}
    if kind == "fact" and any(v != qlang for v in doc_langs.values()):
        err(f"fact question in {qlang} answered by {doc_langs}: make it cross_lingual or fix the docs")
    if kind == "cross_lingual" and any(v == qlang for v in doc_langs.values()):
        err(f"cross_lingual question in {qlang} with a document in the same language {doc_langs}")

    asked = normalise(question or "") + " " + normalise(" ".join(context) if isinstance(context, list) else context or "")
    derived = computed.get(qid, {})
    for m in must:
        if needle_pattern(m).search(asked):
            warn(f"must_contain {m!r} already occurs in the question or its context")
        if m in derived:
            spec = derived[m]
            try:
                value = evaluate(spec["expr"])
            except (ValueError, SyntaxError, KeyError) as exc:
                err(f"computed {m!r}: {exc}")
                continue
            if abs(value - amount(m)) > 0.005:
                err(f"computed {m!r} but {spec['expr']} = {value:.2f}")
            for operand in spec.get("operands", []):
                if not any(kb.holds(d, operand) for d in docs):
                    err(f"operand {operand!r} of computed {m!r} occurs in none of {docs}")
            rep.notes.append(f"{qid}: {m} = {spec['expr']} (operands {spec.get('operands')} found in the expected docs)")
            continue
        found = [d for d in docs if kb.holds(d, m)]
        if not found:
            err(f"must_contain {m!r} occurs in none of the expected docs {docs}")
        elif len(found) < len(docs):
            warn(f"must_contain {m!r} only in {found}, not in {[d for d in docs if d not in found]}")
    if kind == "cross_lingual":
        same = [d for d in kb.text if kb.lang[d] == qlang]
        plain = [m for m in must if m not in derived]
        if plain and all(any(kb.holds(d, m) for d in same) for m in plain):
            rep.notes.append(f"{qid}: every must_contain value also occurs in a {qlang} document "
                             f"({[d for d in same if any(kb.holds(d, m) for m in plain)]}); check by hand it is only a distractor")

    if kind == "unanswerable":
        terms = absent.get(qid)
        if not terms:
            err("unanswerable question without key terms in absent_terms.json")
        for term in terms or []:
            hits = [d for d, t in kb.text.items() if re.search(term, t, re.I)]
            if hits:
                err(f"key term {term!r} of an unanswerable question occurs in {hits}")


def check_set(folder: Path, absent_file: Path | None, computed_file: Path | None) -> bool:
    kb_dir, questions_file = folder / "kb", folder / "questions.jsonl"
    print(f"== {folder}")
    if not kb_dir.is_dir() or not questions_file.is_file():
        print(f"ERROR: {folder} needs kb/ and questions.jsonl")
        return False
    rep = Report()
    absent_file = absent_file or folder / "absent_terms.json"
    computed_file = computed_file or folder / "computed_values.json"
    legacy = _legacy_tables(folder / "check_questions.py")
    absent = json.loads(absent_file.read_text(encoding="utf-8")) if absent_file.is_file() else legacy["absent"]
    computed = json.loads(computed_file.read_text(encoding="utf-8")) if computed_file.is_file() else legacy["computed"]
    if not absent_file.is_file():
        source = "the ABSENT table of check_questions.py" if legacy["absent"] else "nothing"
        rep.warnings.append(f"no {absent_file.name}: absent terms taken from {source}")
    kb = KnowledgeBase.load(kb_dir)
    questions = []
    for number, line in enumerate(questions_file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            questions.append(json.loads(line))
        except json.JSONDecodeError as exc:
            rep.errors.append(f"line {number}: not JSON ({exc})")
    seen = {"ids": set(), "texts": set()}
    for q in questions:
        check_question(q, kb, absent, computed, seen, rep)
    by_id = {q.get("id"): q for q in questions}
    for qid in absent:
        if by_id.get(qid, {}).get("kind") != "unanswerable":
            rep.errors.append(f"absent_terms.json names {qid}, which is not an unanswerable question")
    for qid in computed:
        if qid not in by_id:
            rep.errors.append(f"computed_values.json names unknown question {qid}")

    _print_kb_stats(kb_dir, kb, rep)
    _print_counts(questions)
    for title, items in (("ERRORS", rep.errors), ("WARNINGS", rep.warnings), ("NOTES", rep.notes)):
        print(f"{title} ({len(items)})" + (":" if items else ""))
        for item in items:
            print("  " + item)
    print("RESULT:", "FAIL" if rep.errors else "OK", "\n")
    return not rep.errors


def _legacy_tables(script: Path) -> dict:
    """Sets made before this checker (the physio-clinic set) keep their absent terms and computed values
    as ABSENT = {id: [terms]} and DERIVED = {id: {value: (expr, [operands])}} literals in their own
    check_questions.py; read those literals (never run the script) so such a set needs no extra files."""
    tables: dict = {"absent": {}, "computed": {}}
    if not script.is_file():
        return tables
    for node in ast.parse(script.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name == "ABSENT":
                tables["absent"] = ast.literal_eval(node.value)
            elif name == "DERIVED":
                tables["computed"] = {qid: {value: {"expr": expr, "operands": list(operands)}
                                            for value, (expr, operands) in values.items()}
                                      for qid, values in ast.literal_eval(node.value).items()}
    return tables


def _print_kb_stats(kb_dir: Path, kb: KnowledgeBase, rep: Report) -> None:
    print(f"KB: {len(kb.raw)} documents")
    words = cjk = 0
    for name, text in kb.raw.items():
        c = len(re.findall(r"[\u4e00-\u9fff]", text))
        tokens = re.sub(r"[\u4e00-\u9fff\u3000-\u303f\uff00-\uffef]", " ", text).split()
        w = sum(1 for t in tokens if re.search(r"\w", t))  # table pipes and dashes are not words
        words, cjk = words + w, cjk + c
        extra = ""
        path = kb_dir / name
        if path.suffix == ".pdf":
            from pypdf import PdfReader
            extra = f", {len(PdfReader(str(path)).pages)} pages"
        elif path.suffix == ".docx":
            import docx
            extra = f", {len(docx.Document(str(path)).tables)} tables"
        elif path.suffix == ".html":
            low = path.read_text(encoding="utf-8").lower()
            extra = ", boilerplate: " + " ".join(k for k in ("<nav", "<footer", "cookie", "newsletter") if k in low)
        print(f"  {name:36} {kb.lang[name]:3} {w:6} words" + (f" + {c} CJK chars" if c else "") + extra)
    print(f"  total {words} words + {cjk} CJK characters")
    formats = {Path(n).suffix for n in kb.raw}
    if not FORMATS <= formats:
        rep.warnings.append(f"KB lacks formats {sorted(FORMATS - formats)}")


def _print_counts(questions: list[dict]) -> None:
    print(f"questions: {len(questions)}")
    cells = collections.Counter((q.get("lang"), q.get("kind")) for q in questions)
    print("| lang \\ kind | " + " | ".join(KINDS) + " | total |")
    print("|---" * (len(KINDS) + 2) + "|")
    for lang in LANGS:
        row = [cells[(lang, k)] or "–" for k in KINDS]
        print(f"| {lang} | " + " | ".join(map(str, row)) + f" | {sum(cells[(lang, k)] for k in KINDS)} |")
    totals = [sum(cells[(lang, k)] for lang in LANGS) for k in KINDS]
    print("| total | " + " | ".join(map(str, totals)) + f" | {len(questions)} |")
    two = sum(1 for q in questions if isinstance(q.get("context"), list) and len(q["context"]) == 2)
    print(f"followups with 2 earlier turns: {two}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="evaluation set folders (with kb/ and questions.jsonl)")
    parser.add_argument("--absent", type=Path, help="absent-terms JSON to use instead of DIR/absent_terms.json")
    parser.add_argument("--computed", type=Path, help="computed-values JSON instead of DIR/computed_values.json")
    args = parser.parse_args(argv)
    if (args.absent or args.computed) and len(args.folders) > 1:
        parser.error("--absent/--computed apply to one folder only")
    results = [check_set(f, args.absent, args.computed) for f in args.folders]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
