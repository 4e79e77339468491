"""Word-group streaming must reproduce the reply text exactly."""
from agent.agent import stream_pieces


def test_stream_pieces_cover_text_exactly() -> None:
    for sample in ["", "one", "a b c d e f g h i j k", "以下是我们资料中的相关内容：" * 5, "x  y\n\nz"]:
        assert "".join(stream_pieces(sample, 3)) == sample


def test_pieces_are_word_groups_and_long_unspaced_runs_are_cut() -> None:
    assert stream_pieces("a b c d e f g", 3) == ["a b c ", "d e f ", "g"]
    chinese = "以下是我们资料中的相关内容：" * 5
    assert len(stream_pieces(chinese, 1)) > 1
    assert stream_pieces("", 3) == []
