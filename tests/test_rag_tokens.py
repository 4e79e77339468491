"""TokenCounter: offline cl100k_base counting."""
import subprocess
import sys
import textwrap
from pathlib import Path

from rag.tokens import OFFLINE_ENCODING, TokenCounter

ROOT = Path(__file__).resolve().parents[1]


def test_counts_encodes_and_decodes_like_cl100k():
    counter = TokenCounter()
    assert counter.encoding_name == OFFLINE_ENCODING
    # Known cl100k_base ids: "hello" -> 15339, " world" -> 1917.
    assert counter.encode("hello world") == [15339, 1917]
    assert counter.count("hello world") == 2
    text = "Chemical wash: $80 per unit. 冷气机清洗 ஏர்கண்டிஷனர்"
    assert counter.decode(counter.encode(text)) == text
    assert counter.count("") == 0


def test_special_token_text_in_documents_is_plain_text():
    counter = TokenCounter()
    tokens = counter.encode("before <|endoftext|> after")
    assert 100257 not in tokens  # the real <|endoftext|> id is never produced from document text
    assert counter.decode(tokens) == "before <|endoftext|> after"


def test_works_with_networking_disabled(tmp_path):
    """A fresh process with every socket connect refused and an empty tiktoken cache still counts."""
    script = textwrap.dedent(
        """
        import socket
        def refuse(*args, **kwargs):
            raise AssertionError("network access attempted")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        from rag.tokens import TokenCounter
        print(TokenCounter().count("offline works"))
        """
    )
    env = {"PATH": "/usr/bin:/bin", "TIKTOKEN_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2"
