"""The web chat's example questions drawn from a knowledge base's headings."""
from __future__ import annotations

from supportlah.web_intro import examples_from_headings


def test_questions_first_in_turn_across_documents_in_the_business_language_titles_last():
    headings = [
        ("faq.md", "en", "FAQ"),
        ("faq.md", "en", "FAQ > Do you deliver on Sundays?"),
        ("faq.md", "en", "FAQ > Can I order a cake for tomorrow?"),
        ("faq.md", "en", "FAQ > Do you deliver on Sundays?"),  # a long section: several chunks, one heading
        ("faq-zh.md", "zh", "常见问题 > 可以送货吗？"),
        ("menu.md", "en", "Menu > 1. Cakes"),
        ("menu.md", "en", "Menu > Breads"),
    ]
    assert examples_from_headings(headings, language="en") == [
        "Do you deliver on Sundays?", "Can I order a cake for tomorrow?", "Cakes", "Breads"]
    assert examples_from_headings(headings, language="zh")[0] == "可以送货吗？"
    assert examples_from_headings(headings, language="en", limit=6)[-2:] == ["可以送货吗？", "FAQ"]


def test_a_knowledge_base_without_sections_offers_its_titles_and_an_empty_one_nothing():
    assert examples_from_headings([("menu.md", "en", "Sunrise Bakery menu")], language="en") == ["Sunrise Bakery menu"]
    assert examples_from_headings([], language="en") == []
