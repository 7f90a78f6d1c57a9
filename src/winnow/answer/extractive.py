"""An answer without a language model: the sentences of the sources that best answer the question.

The cross-encoder that ranked the passages also scores each of their sentences against the question;
the best few are returned verbatim with the number of the passage they come from. Nothing is
generated, so nothing can be made up, and the answer says plainly what it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from winnow.answer.context import Passage
from winnow.retrieve.chunking import _segments as sentence_spans

if TYPE_CHECKING:
    from winnow.rerank import Reranker

NO_LLM_NOTICE = "No language model configured: the best-matching sentences from the sources."
MIN_WORDS = 4


@dataclass(frozen=True, slots=True)
class Sentence:
    """One source sentence: its text, the citation number of its passage, its score against the question,
    and its character range in the document (None when the passage's span is unknown)."""

    text: str
    number: int
    score: float
    span: tuple[int, int] | None

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "number": self.number, "score": self.score, "span": self.span}


def _sentences(passages: Sequence[Passage]) -> list[Sentence]:
    """Every sentence of at least MIN_WORDS words (a passage with none counts as one sentence)."""
    out = []
    for passage in passages:
        found = []
        for start, end, _ in sentence_spans(passage.text):
            text = passage.text[start:end]
            if len(text.split()) >= MIN_WORDS:
                span = (passage.span[0] + start, passage.span[0] + end) if passage.span else None
                found.append(Sentence(text=text, number=passage.number, score=0.0, span=span))
        if not found and passage.text.strip():
            found.append(
                Sentence(text=passage.text.strip(), number=passage.number, score=0.0, span=passage.span)
            )
        out.extend(found)
    return out


def best_sentences(
    reranker: Reranker, question: str, passages: Sequence[Passage], count: int = 3
) -> list[Sentence]:
    """The ``count`` sentences of ``passages`` that the cross-encoder scores highest, best first."""
    if count < 1:
        raise ValueError(f"the number of sentences must be at least 1, got {count}")
    unique: dict[str, Sentence] = {}
    for sentence in _sentences(passages):
        unique.setdefault(sentence.text, sentence)  # the same sentence in two passages is scored once
    candidates = list(unique.values())
    if not candidates:
        return []
    scores = reranker.score([(question, s.text) for s in candidates])
    scored = [
        Sentence(text=s.text, number=s.number, score=float(score), span=s.span)
        for s, score in zip(candidates, scores, strict=True)
    ]
    return sorted(scored, key=lambda s: s.score, reverse=True)[:count]


def render_extractive(sentences: Sequence[Sentence], notice: str = NO_LLM_NOTICE) -> str:
    """The notice, then each sentence quoted (line breaks inside it flattened) with its citation."""
    lines = [f'"{" ".join(s.text.split())}" [{s.number}]' for s in sentences]
    return "\n\n".join([notice, *lines]) if lines else f"{notice}\n\n(the sources have no sentences to quote)"
