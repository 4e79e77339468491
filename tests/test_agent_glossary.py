"""Glossing support words lets English documents answer Malay, Chinese and Tamil questions."""
from agent.glossary import Glossary
from agent.lexical import terms
from tests.sample_business import sample_vocabulary


def test_glosses_each_language() -> None:
    glossary = Glossary(sample_vocabulary().glossary)
    assert glossary.glosses("Berapa harga servis untuk kondo?") == ["price", "service", "condo"]
    assert glossary.glosses("化学清洗的保修期多长？") == ["chemical wash", "warranty"]
    assert glossary.glosses("கெமிக்கல் வாஷுக்கு உத்தரவாதம் எத்தனை நாட்கள்?") == ["chemical wash", "warranty", "days"]


def test_longest_phrase_wins_and_english_is_untouched() -> None:
    glossary = Glossary(sample_vocabulary().glossary)
    assert glossary.glosses("berapa lama?") == ["how long"]
    assert glossary.expand("How much is a chemical wash?") == "How much is a chemical wash?"
    assert glossary.expand("Harga servis?") == "Harga servis? (price; service)"
    assert "harga" not in glossary.glosses("Harga servis?")  # whole words only; "harga" itself is the key


def test_translation_feeds_term_matching_without_suffix_debris() -> None:
    translated = Glossary(sample_vocabulary().glossary).translate("கெமிக்கல் வாஷுக்கு உத்தரவாதம்")
    found = terms(translated)
    assert {"chemical", "wash", "warranty"} <= set(found)
    assert not any(t.startswith("\u0bc1") for t in found)  # the "ுக்கு" left of "வாஷுக்கு"


def test_custom_entries() -> None:
    glossary = Glossary({"cuci aircon": "general service", "洗冷气": "general service"})
    assert glossary.glosses("Nak cuci aircon esok") == ["general service"]
    assert glossary.glosses("我想洗冷气") == ["general service"]
    assert glossary.glosses("berapa harga?") == ["price"]  # the generic words stay beside a business's own
