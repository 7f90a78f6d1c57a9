"""Tokenize (query, document) pairs into model inputs: truncation that only ever cuts the document,
optional overlapping windows over long documents, and the character span each window covers."""

from __future__ import annotations

from dataclasses import dataclass

from tokenizers import Encoding

from winnow.models.tokenizer import Tokenizer

# A token is rarely longer than this many characters, so text beyond max_tokens * CHARS_PER_TOKEN_CAP
# characters can never reach the model: cutting it before tokenizing keeps a 1 MB document cheap.
CHARS_PER_TOKEN_CAP = 16


@dataclass(slots=True)
class EncodedPairs:
    """Model inputs for a list of pairs; one pair may own several windows."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    owner: list[int]
    spans: list[tuple[int, int]]
    truncated: list[bool]


def _check_query_lengths(tokenizer: Tokenizer, queries: list[str], max_length: int) -> None:
    limit = max_length // 2
    for query in set(queries):
        n_tokens = tokenizer.count(query)
        if n_tokens > limit:
            raise ValueError(
                f"query is {n_tokens} tokens long; with max_length={max_length} a query may use at most "
                f"{limit} so the document keeps room (queries are never truncated). "
                "Shorten the query or raise max_length."
            )


def encode_pairs(
    tokenizer: Tokenizer,
    queries: list[str],
    texts: list[str],
    max_length: int,
    windows: bool = False,
    window_overlap: int = 64,
    max_windows: int = 32,
) -> EncodedPairs:
    """Encode pairs for a cross-encoder.

    Without windows each pair keeps its first ``max_length`` tokens (the document is cut, the query never)
    and ``truncated`` says whether anything was cut. With windows a long document becomes up to
    ``max_windows`` overlapping windows, each remembering its character span in the document.
    """
    _check_query_lengths(tokenizer, queries, max_length)
    char_cap = max_length * CHARS_PER_TOKEN_CAP * (max_windows if windows else 1)
    cut_texts = [text[:char_cap] for text in texts]
    pairs = tokenizer.encode_pairs(queries, cut_texts, max_length, stride=window_overlap if windows else 0)
    keep_per_pair = max_windows if windows else 1
    truncated = [
        len(cut) < len(text) or len(pair) > keep_per_pair
        for text, cut, pair in zip(texts, cut_texts, pairs, strict=True)
    ]
    result = EncodedPairs([], [] if tokenizer.token_types else None, [], [], truncated)
    for owner, pair in enumerate(pairs):
        for window in pair[:keep_per_pair]:
            result.input_ids.append(window.ids)
            if result.token_type_ids is not None:
                result.token_type_ids.append(window.type_ids)
            result.owner.append(owner)
            result.spans.append(_document_span(window) if windows else (0, 0))
    return result


def _document_span(window: Encoding) -> tuple[int, int]:
    """Character range of the document tokens in one window."""
    positions = [i for i, sequence in enumerate(window.sequence_ids) if sequence == 1]
    if not positions:
        return (0, 0)
    return (window.offsets[positions[0]][0], window.offsets[positions[-1]][1])
