"""Tokenize (query, document) pairs into model inputs: truncation that only ever cuts the document,
optional overlapping windows over long documents, and the character span each window covers."""

from __future__ import annotations

from dataclasses import dataclass

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


def _check_query_lengths(tokenizer, queries: list[str], max_length: int) -> None:
    limit = max_length // 2
    for query in set(queries):
        # Counting tokens on purpose: verbose=False keeps transformers' "sequence length is longer than the
        # specified maximum" warning (meant for untruncated model input) away from the user.
        n_tokens = len(tokenizer(query, add_special_tokens=False, verbose=False)["input_ids"])
        if n_tokens > limit:
            raise ValueError(
                f"query is {n_tokens} tokens long; with max_length={max_length} a query may use at most "
                f"{limit} so the document keeps room (queries are never truncated). "
                "Shorten the query or raise max_length."
            )


def encode_pairs(
    tokenizer,
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
    encoded = tokenizer(
        queries,
        cut_texts,
        truncation="only_second",
        max_length=max_length,
        stride=window_overlap if windows else 0,
        return_overflowing_tokens=True,
        return_offsets_mapping=windows,
    )
    owners = encoded["overflow_to_sample_mapping"]
    window_counts = [0] * len(texts)
    for owner in owners:
        window_counts[owner] += 1
    keep_per_pair = max_windows if windows else 1
    truncated = [
        len(cut) < len(text) or count > keep_per_pair
        for text, cut, count in zip(texts, cut_texts, window_counts, strict=True)
    ]

    has_token_types = "token_type_ids" in encoded
    result = EncodedPairs([], [] if has_token_types else None, [], [], truncated)
    seen = [0] * len(texts)
    for row, owner in enumerate(owners):
        if seen[owner] >= keep_per_pair:
            continue
        seen[owner] += 1
        result.input_ids.append(encoded["input_ids"][row])
        if result.token_type_ids is not None:
            result.token_type_ids.append(encoded["token_type_ids"][row])
        result.owner.append(owner)
        result.spans.append(_document_span(encoded, row) if windows else (0, 0))
    return result


def _document_span(encoded, row: int) -> tuple[int, int]:
    """Character range of the document tokens in one window."""
    offsets = encoded["offset_mapping"][row]
    positions = [i for i, sequence in enumerate(encoded.sequence_ids(row)) if sequence == 1]
    if not positions:
        return (0, 0)
    return (offsets[positions[0]][0], offsets[positions[-1]][1])
