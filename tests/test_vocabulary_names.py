"""One vocabulary in the source tree: each seam declared once, one table of languages, hand-off
reasons spelled through :class:`config.types.HandoffReason` rather than as string literals.

These read the code (``ast``), not the running system: they fail when a second ``Retriever``
Protocol appears, a module lists the language codes again, or ``"low_confidence"`` is typed
where ``HandoffReason.LOW_CONFIDENCE`` exists.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from config.languages import LANGUAGE_CODES
from config.types import HandoffReason

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agent", "workers", "escalation", "supportlah", "memory", "channels", "rag", "config", "bench")

# The same word in another vocabulary: the model's escalation tool offers "customer_request" (mapped
# to the HandoffReason in agent/tools.py); the OpenAPI page shows an example ticket; Telegram refuses
# an empty text with its own error code.
OTHER_VOCABULARIES = {
    ("agent/tools.py", "customer_request"),
    ("agent/tools.py", "needs_staff"),
    ("supportlah/admin/openapi.py", "low_confidence"),
    ("channels/telegram/outbound.py", "empty_message"),
}
# Values too common as plain words to police ("attachment" is also a Content-Disposition).
COMMON_WORDS = {HandoffReason.ATTACHMENT, HandoffReason.UNSATISFIED}


def _modules() -> list[tuple[str, ast.Module]]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found.append((path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(encoding="utf-8"))))
    return found


def _is_protocol(node: ast.ClassDef) -> bool:
    return any((isinstance(b, ast.Name) and b.id == "Protocol")
               or (isinstance(b, ast.Attribute) and b.attr == "Protocol") for b in node.bases)


def test_each_protocol_is_declared_once():
    declared: dict[str, list[str]] = defaultdict(list)
    for name, module in _modules():
        for node in ast.walk(module):
            if isinstance(node, ast.ClassDef) and _is_protocol(node):
                declared[node.name].append(name)
    twice = {protocol: where for protocol, where in declared.items() if len(where) > 1}
    assert not twice, f"declare each seam once, in the package that owns it: {twice}"


def test_the_language_codes_are_listed_only_in_config_languages():
    codes = set(LANGUAGE_CODES)
    listed = []
    for name, module in _modules():
        if name == "config/languages.py":
            continue
        for node in ast.walk(module):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                values = {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
                if codes <= values:
                    listed.append(f"{name}:{node.lineno}")
    assert not listed, f"read the languages from config.languages, not a list of your own: {listed}"


def test_handoff_reasons_are_not_spelled_as_strings():
    reasons = {reason.value for reason in HandoffReason} - {word.value for word in COMMON_WORDS}
    spelled = []
    for name, module in _modules():
        if name == "config/types.py":
            continue
        for node in ast.walk(module):
            if (isinstance(node, ast.Constant) and node.value in reasons
                    and (name, node.value) not in OTHER_VOCABULARIES):
                spelled.append(f"{name}:{node.lineno} {node.value!r}")
    assert not spelled, f"use config.types.HandoffReason: {spelled}"


def test_the_guard_sees_the_tree():
    """The checks above pass vacuously if the walk finds nothing; it must find the seams it guards."""
    declared = {node.name for _, module in _modules() for node in ast.walk(module)
                if isinstance(node, ast.ClassDef) and _is_protocol(node)}
    assert {"Agent", "Retriever", "AnswerDrafter", "OutboundSender"} <= declared
