"""Context assembly: the passages an answer is written from, under a token budget, ready to cite.

Why each step:

* **Budget.** A prompt has a size limit and a cost; the best passages go in first, a passage that does
  not fit is skipped (a shorter one further down may still fit), and the best one is cut to fit rather
  than leave the context empty. Tokens are counted with a real tokenizer (the reranker's by default),
  because characters say little about tokens.
* **Merging.** Neighbouring or overlapping chunks of one document (by their character ``span``) become
  one passage: the model reads the text once, in order, and the overlap is not paid for twice.
* **Ordering.** Models use the start and end of a long context better than its middle ("lost in the
  middle", Liu et al. 2023), so the 1st, 3rd, 5th... strongest passages go at the front and the 2nd,
  4th... come back from the end: the two strongest sit at the two edges.
* **Numbering and quoting.** Passages are numbered [1], [2]... in prompt order for citations, and
  rendered as JSON strings, so a passage cannot close its own quotes and pose as instructions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from winnow.models.tokenizer import Tokenizer as ModelTokenizer
from winnow.records import as_candidate

DEFAULT_TOKEN_BUDGET = 1500
TokenCounter = Callable[[str], int]


@dataclass(frozen=True, slots=True)
class Passage:
    """One numbered passage of a context.

    ``number`` is its citation number and position in the prompt; ``rank`` is the best relevance rank
    (1-based, in the results given) of the chunks it was merged from; ``score`` the best of their
    reranker scores (stage-1 score when there was no reranker). ``span`` is the character range in
    the document, None when unknown; ``truncated`` is True when the text was cut to fit the budget.
    """

    number: int
    text: str
    doc_id: str | None
    title: str
    source: str
    span: tuple[int, int] | None
    score: float | None
    rank: int
    tokens: int
    chunk_ids: tuple[str, ...] = ()
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "doc_id": self.doc_id,
            "title": self.title,
            "source": self.source,
            "span": list(self.span) if self.span else None,
            "score": self.score,
            "rank": self.rank,
            "tokens": self.tokens,
            "chunk_ids": list(self.chunk_ids),
            "truncated": self.truncated,
            "text": self.text,
        }


@dataclass(frozen=True, slots=True)
class Context:
    """Numbered passages in prompt order, their total tokens, and what the budget left out."""

    passages: list[Passage]
    tokens: int
    budget: int
    skipped: int = 0
    merged: int = 0
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.passages)

    def passage(self, number: int) -> Passage:
        """The passage cited as ``[number]``."""
        if not 1 <= number <= len(self.passages):
            raise KeyError(f"no passage [{number}]: this context has passages [1] to [{len(self.passages)}]")
        return self.passages[number - 1]

    def render(self) -> str:
        """The passages as quoted data: ``[n] {"title": ..., "source": ..., "text": ...}``, one a line."""
        lines = []
        for p in self.passages:
            record = {key: value for key, value in (("title", p.title), ("source", p.source)) if value}
            record["text"] = p.text
            lines.append(f"[{p.number}] {json.dumps(record, ensure_ascii=False)}")
        return "\n".join(lines)


def _untruncated(backend: Any) -> Any:
    """A private copy of a ``tokenizers.Tokenizer`` with truncation and padding off.

    Model tokenizer files often carry truncation (128 or 512 tokens): counting with them would say a
    long passage fits any budget.
    """
    from tokenizers import Tokenizer

    copy = Tokenizer.from_str(backend.to_str())
    copy.no_truncation()
    copy.no_padding()
    return copy


@lru_cache(maxsize=8)
def _counter(tokenizer: Any) -> TokenCounter:
    if tokenizer is None:
        from tokenizers import Tokenizer

        from winnow.models import resolve_model
        from winnow.rerank import DEFAULT_RERANKER

        tokenizer = Tokenizer.from_file(str(resolve_model(DEFAULT_RERANKER) / "tokenizer.json"))
    if isinstance(tokenizer, ModelTokenizer):  # a Reranker's own
        return tokenizer.count
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)  # a transformers "fast" tokenizer's core
    if hasattr(backend, "to_str") and hasattr(backend, "no_truncation"):
        fast = _untruncated(backend)
        return lambda text: len(fast.encode(text, add_special_tokens=False).ids)
    if hasattr(tokenizer, "encode"):  # a slow (pure Python) transformers tokenizer: never truncates here
        return lambda text: len(tokenizer.encode(text, add_special_tokens=False))
    if callable(tokenizer):
        return tokenizer
    raise TypeError(
        f"tokenizer must be a Hugging Face tokenizer or a function, not {type(tokenizer).__name__}"
    )


def token_counter(tokenizer: Any = None) -> TokenCounter:
    """A function counting the tokens of a text (special tokens excluded, never truncated).

    ``tokenizer`` is a Hugging Face tokenizer (``transformers`` or ``tokenizers``), a ``(text) -> int``
    function, or None for the default reranker's tokenizer. Counters are cached per tokenizer.
    """
    return _counter(tokenizer)


def _fields(item: Any, position: int) -> dict[str, Any]:
    """A passage's fields from one result in any shape ``winnow.records.as_candidate`` reads.

    The score is the reranker's; a result without one (a PipelineResult of an unreranked search, or
    its JSON) falls back to its ``stage1_score``. ``rank`` is the position in the list given.
    """
    record = as_candidate(item, position)
    score = record.score
    if score is None:
        stage1 = (
            item.get("stage1_score") if isinstance(item, Mapping) else getattr(item, "stage1_score", None)
        )
        score = float(stage1) if isinstance(stage1, int | float) else None
    return {
        "text": record.text,
        "doc_id": record.doc_id,
        "title": record.title,
        "source": record.source,
        "span": record.span,
        "score": score,
        "rank": position + 1,
        "chunk_ids": (record.chunk_id,) if record.chunk_id else (),
    }


def _cut_to(text: str, limit: int, count: TokenCounter) -> str:
    """The longest prefix of ``text`` that ends before a whitespace and has at most ``limit`` tokens."""
    cuts = [m.start() for m in re.finditer(r"\s+", text)] + [len(text)]
    low, high = 0, len(cuts)  # the answer is cuts[low - 1], or nothing when low == 0
    while low < high:
        middle = (low + high + 1) // 2
        if count(text[: cuts[middle - 1]]) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[: cuts[low - 1]] if low else ""


def _merge_group(parts: list[dict[str, Any]], gap: int) -> list[dict[str, Any]]:
    """Merge the passages of one document whose spans overlap or are at most ``gap`` characters apart."""
    parts = sorted(parts, key=lambda p: p["span"][0])
    merged = [dict(parts[0])]
    for part in parts[1:]:
        last = merged[-1]
        (start, end), (next_start, next_end) = last["span"], part["span"]
        if next_start > end + gap:
            merged.append(dict(part))
            continue
        if next_end > end:
            if next_start >= end:
                # Chunk spans are trimmed, so the gap between neighbours was whitespace; a joiner of
                # the same length keeps character offsets into the passage valid offsets into the span.
                gap_size = next_start - end
                last["text"] += (" " if gap_size == 1 else "\n" * gap_size) + part["text"]
            else:
                last["text"] += part["text"][end - next_start :]
            last["span"] = (start, next_end)
        last["rank"] = min(last["rank"], part["rank"])
        scores = [s for s in (last["score"], part["score"]) if s is not None]
        last["score"] = max(scores) if scores else None
        last["chunk_ids"] = last["chunk_ids"] + part["chunk_ids"]
        last["merged"] = last.get("merged", 0) + 1
    return merged


def _merge(selected: list[dict[str, Any]], gap: int) -> tuple[list[dict[str, Any]], int]:
    """Merge neighbouring chunks per document; returns the passages (best rank first), merges done."""
    groups: dict[str, list[dict[str, Any]]] = {}
    alone = []
    for part in selected:
        if part["doc_id"] is None or part["span"] is None or part.get("truncated"):
            alone.append(part)
        else:
            groups.setdefault(part["doc_id"], []).append(part)
    out = list(alone)
    for parts in groups.values():
        out.extend(_merge_group(parts, gap))
    merges = sum(p.get("merged", 0) for p in out)
    return sorted(out, key=lambda p: p["rank"]), merges


def edges_first(items: Sequence[Any]) -> list[Any]:
    """Best-first items reordered so the strongest sit at both ends: 1st, 3rd, 5th, ..., 4th, 2nd."""
    return list(items[0::2]) + list(items[1::2])[::-1]


def build_context(
    results: Sequence[Any],
    *,
    budget: int = DEFAULT_TOKEN_BUDGET,
    tokenizer: Any = None,
    adjacent_gap: int = 2,
) -> Context:
    """Select, merge, order and number ``results`` (best first) into a context of at most ``budget`` tokens.

    ``results`` are PipelineResults, stage-1 Candidates, strings, or dicts / objects with "text" (or
    "content" / "page_content"; optionally doc_id, title, source, span, score, chunk_id; title and
    source may sit in their metadata, as LangChain keeps them). ``budget`` counts passage text tokens (the
    numbering and quoting around them are not counted). Chunks of one document whose spans overlap or
    are at most ``adjacent_gap`` characters apart are merged.
    """
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
        raise ValueError(f"token budget must be a positive number of tokens, got {budget!r}")
    if isinstance(results, str) or not isinstance(results, Sequence):
        raise TypeError(f"results must be a list of results, not {type(results).__name__}")
    count = token_counter(tokenizer)
    selected: list[dict[str, Any]] = []
    used, skipped, notes = 0, 0, []
    for position, item in enumerate(results):
        part = _fields(item, position)
        if not part["text"].strip():
            continue
        tokens = part["tokens"] = count(part["text"])
        if used + tokens <= budget:
            selected.append(part)
            used += tokens
            continue
        cut = "" if selected else _cut_to(part["text"], budget, count)
        if not cut.strip():
            skipped += 1
            continue
        # Nothing fits yet: the best passage, cut, is better than an empty context.
        part["text"] = cut
        if part["span"] is not None:
            part["span"] = (part["span"][0], part["span"][0] + len(cut))
        part["truncated"] = True
        part["tokens"] = used = count(cut)
        notes.append(f"result {position + 1} ({tokens} tokens) was cut to fit the budget of {budget}")
        selected.append(part)
    merged, merges = _merge(selected, adjacent_gap)
    passages = []
    for number, part in enumerate(edges_first(merged), start=1):
        if part.pop("merged", 0):
            part["tokens"] = count(part["text"])
        passages.append(Passage(number=number, **part))
    return Context(
        passages=passages,
        tokens=sum(p.tokens for p in passages),
        budget=budget,
        skipped=skipped,
        merged=merges,
        notes=notes,
    )


def cited_passages(context: Context, numbers: Sequence[int]) -> list[Passage]:
    """The passages cited by ``numbers`` (duplicates and unknown numbers dropped), in number order."""
    valid = sorted({n for n in numbers if 1 <= n <= len(context.passages)})
    return [context.passages[n - 1] for n in valid]
