"""Chunks stay within the token budget, map back to the text exactly, and keep ids when text is unchanged."""

from __future__ import annotations

import itertools

import pytest
from tokenizers import Tokenizer

from winnow.models import resolve_model
from winnow.retrieve.chunking import Chunker

MODEL_DIR = resolve_model("all-minilm-l6")
SENTENCES = [
    f"Sentence number {i} talks about topic {i % 7} with a few extra words to make it longer."
    for i in range(60)
]
TEXT = "\n\n".join(" ".join(SENTENCES[i : i + 5]) for i in range(0, 60, 5))


TOKENIZER = Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
TOKENIZER.no_padding()
TOKENIZER.no_truncation()


def tokens(text: str) -> int:
    return len(TOKENIZER.encode(text, add_special_tokens=False).ids)


def test_chunks_map_back_to_text_and_respect_the_budget() -> None:
    chunks = Chunker(MODEL_DIR, max_tokens=80, overlap=30).split("doc", TEXT)
    assert len(chunks) > 5
    for chunk in chunks:
        start, end = chunk.span
        assert TEXT[start:end] == chunk.text
        assert tokens(chunk.text) <= 80
        assert chunk.text[0].isalnum() and chunk.text.endswith(".")  # cut at sentence boundaries
    assert chunks[0].span[0] == 0 and chunks[-1].span[1] == len(TEXT)
    # Overlap is whole sentences of up to 30 tokens: chunks never leave a gap, and they do overlap.
    for before, after in itertools.pairwise(chunks):
        assert after.span[0] <= before.span[1] + 2
    assert any(after.span[0] < before.span[1] for before, after in itertools.pairwise(chunks))


def test_a_sentence_longer_than_the_budget_is_cut_by_tokens() -> None:
    text = " ".join(["word"] * 300) + "."
    chunks = Chunker(MODEL_DIR, max_tokens=100, overlap=0).split("d", text)
    assert [tokens(c.text) <= 100 for c in chunks] == [True] * len(chunks)
    assert "".join(text[c.span[0] : c.span[1]] for c in chunks).replace(" ", "") == text.replace(" ", "")


def test_whole_document_mode_and_empty_text() -> None:
    chunker = Chunker(None, max_tokens=None)
    [chunk] = chunker.split("d", TEXT)
    assert chunk.span == (0, len(TEXT)) and chunk.text == TEXT
    assert chunker.split("d", "   ") == []


def test_chunk_ids_survive_edits_elsewhere_in_the_document() -> None:
    chunker = Chunker(MODEL_DIR, max_tokens=64, overlap=0)
    before = chunker.split("doc", TEXT)
    edited = TEXT.replace("Sentence number 59", "Sentence number fifty-nine")
    after = chunker.split("doc", edited)
    unchanged = {c.chunk_id for c in before} & {c.chunk_id for c in after}
    assert len(unchanged) == len(before) - 1
    assert {c.chunk_id for c in chunker.split("other-doc", TEXT)}.isdisjoint(c.chunk_id for c in before)


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        Chunker(MODEL_DIR, max_tokens=8)
    with pytest.raises(ValueError, match="chunk_overlap"):
        Chunker(MODEL_DIR, max_tokens=64, overlap=40)
