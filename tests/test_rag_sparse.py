"""BM25 tokenizer and sparse vectors."""
import math

from rag.sparse import BM25SparseEncoder, SparseVec, Tokenizer, term_id


def test_chinese_becomes_character_unigrams_and_bigrams():
    assert Tokenizer().tokenize("冷气清洗") == ["冷", "气", "清", "洗", "冷气", "气清", "清洗"]


def test_mixed_chinese_and_latin_keeps_latin_words_whole():
    tokens = Tokenizer().tokenize("GS-HDB-2配套价格")
    assert tokens[:4] == ["gs-hdb-2", "gs", "hdb", "2"]
    assert {"配", "套", "配套", "价格"} <= set(tokens)


def test_japanese_korean_and_thai_are_split_into_characters():
    tokens = Tokenizer().tokenize("エアコン 에어컨 แอร์")
    assert {"エア", "アコ", "コン", "에어", "어컨", "แอ"} <= set(tokens)


def test_tamil_words_keep_their_vowel_signs():
    assert Tokenizer().tokenize("ஏர்கண்டிஷனர் சேவை கட்டணம்") == ["ஏர்கண்டிஷனர்", "சேவை", "கட்டணம்"]


def test_product_codes_are_kept_whole_and_split_into_parts():
    tokens = Tokenizer().tokenize("Book GS-HDB-2 or AC2024 today.")
    assert tokens == ["book", "gs-hdb-2", "gs", "hdb", "2", "ac2024", "ac", "2024", "today"]


def test_lowercases_nfkc_normalizes_and_drops_english_stopwords():
    # Full-width letters and hyphen (as typed on a CJK keyboard) fold to ASCII.
    assert Tokenizer().tokenize("ＧＳ－ＨＤＢ－２") == ["gs-hdb-2", "gs", "hdb", "2"]
    assert Tokenizer().tokenize("What is the price of THE service?") == ["price", "service"]


def test_term_ids_are_stable_uint32():
    assert term_id("aircon") == term_id("aircon")
    assert term_id("aircon") != term_id("aircons")
    assert 0 <= term_id("冷气") < 2**32
    # Pinned: indexed vectors depend on these ids never changing between releases.
    assert term_id("aircon") == 1376584353
    assert term_id("冷气") == 1453951993


def test_document_values_are_bm25_tf_saturation():
    encoder = BM25SparseEncoder(k1=1.2, b=0.75, avg_len=4.0)
    vec = encoder.encode_document("aircon aircon service repair")  # 4 tokens, length == avg_len
    weights = dict(zip(vec.indices, vec.values))
    norm = 1.2  # k1 * (1 - b + b * 4/4)
    assert math.isclose(weights[term_id("aircon")], 2 * 2.2 / (2 + norm))
    assert math.isclose(weights[term_id("service")], 1 * 2.2 / (1 + norm))
    assert list(vec.indices) == sorted(vec.indices)


def test_longer_documents_get_lower_weights_for_the_same_tf():
    encoder = BM25SparseEncoder(avg_len=10.0)
    short_vec = encoder.encode_document("aircon service")
    long_vec = encoder.encode_document("aircon " + "filler " * 30)
    short = dict(zip(short_vec.indices, short_vec.values))
    long = dict(zip(long_vec.indices, long_vec.values))
    assert short[term_id("aircon")] > long[term_id("aircon")]


def test_query_vector_is_one_per_unique_term():
    vec = BM25SparseEncoder().encode_query("aircon aircon leaking")
    assert vec == SparseVec.from_weights({term_id("aircon"): 1.0, term_id("leaking"): 1.0})


def test_empty_text_gives_empty_vectors():
    encoder = BM25SparseEncoder()
    assert len(encoder.encode_document("the of and")) == 0
    assert len(encoder.encode_query("")) == 0
