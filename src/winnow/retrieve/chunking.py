"""Split documents into token-bounded chunks that end at paragraph or sentence boundaries.

Token counts come from a real WordPiece/BPE tokenizer (the model's ``tokenizer.json``), because a chunk
that fits a character budget can still overflow the model and be silently truncated. Chunk ids hash the
document id and the chunk's own text, so an unchanged paragraph keeps its id when the text around it
changes, and its embedding is reused on re-index.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING

from winnow.records import Chunk

if TYPE_CHECKING:
    from tokenizers import Tokenizer

_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9])")


def chunk_id(doc_id: str, text: str, occurrence: int = 0) -> str:
    """Stable id of a chunk: a hash of its document id, its text and which repeat of that text it is."""
    digest = hashlib.sha1(f"{doc_id}\x00{occurrence}\x00{text}".encode()).hexdigest()
    return digest[:20]


def _segments(text: str) -> list[tuple[int, int, bool]]:
    """(start, end, starts_paragraph) of every sentence, trimmed of surrounding whitespace."""
    out: list[tuple[int, int, bool]] = []
    para_start = 0
    bounds = [m.span() for m in _PARAGRAPH.finditer(text)] + [(len(text), len(text))]
    for para_end, next_start in bounds:
        first = True
        sent_start = para_start
        cuts = [m.start() for m in _SENTENCE_END.finditer(text, para_start, para_end)] + [para_end]
        for cut in cuts:
            piece = text[sent_start:cut]
            lead = len(piece) - len(piece.lstrip())
            tail = len(piece.rstrip())
            if piece.strip():
                out.append((sent_start + lead, sent_start + tail, first))
                first = False
            sent_start = cut
        para_start = next_start
    return out


class Chunker:
    """Token-aware chunker: ``max_tokens`` per chunk (None = whole document).

    ``overlap`` is a token budget for whole sentences repeated from the end of the previous chunk.
    """

    def __init__(self, tokenizer_dir: str | Path | None, max_tokens: int | None = 256, overlap: int = 32):
        if max_tokens is not None and max_tokens < 16:
            raise ValueError(
                f"chunk_tokens must be at least 16 (or None for whole documents), got {max_tokens}"
            )
        if max_tokens is not None and not 0 <= overlap < max_tokens // 2:
            raise ValueError(f"chunk_overlap must be between 0 and chunk_tokens/2, got {overlap}")
        self.max_tokens = max_tokens
        self.overlap = overlap
        self._tokenizer: Tokenizer | None = None
        if max_tokens is not None:
            if tokenizer_dir is None or not (Path(tokenizer_dir) / "tokenizer.json").is_file():
                raise ValueError(f"no tokenizer.json in {tokenizer_dir}: token-aware chunking needs one")
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_file(str(Path(tokenizer_dir) / "tokenizer.json"))
            self._tokenizer.no_truncation()
            self._tokenizer.no_padding()

    def split(self, doc_id: str, text: str) -> list[Chunk]:
        """Chunks of ``text`` in order; each chunk's text is exactly ``text[start:end]``."""
        if self.max_tokens is None or self._tokenizer is None:
            spans = [(0, len(text))] if text.strip() else []
        else:
            spans = self._pack(text)
        chunks: list[Chunk] = []
        seen: dict[str, int] = {}
        for start, end in spans:
            piece = text[start:end]
            occurrence = seen.get(piece, 0)
            seen[piece] = occurrence + 1
            chunks.append(Chunk(chunk_id(doc_id, piece, occurrence), doc_id, piece, (start, end)))
        return chunks

    def _pieces(self, text: str) -> list[tuple[int, int, int, bool]]:
        """(start, end, tokens, starts_paragraph) units of at most max_tokens; long sentences are cut."""
        assert self._tokenizer is not None and self.max_tokens is not None
        segments = _segments(text)
        encodings = self._tokenizer.encode_batch(
            [text[s:e] for s, e, _ in segments], add_special_tokens=False
        )
        units: list[tuple[int, int, int, bool]] = []
        for (start, end, para), enc in zip(segments, encodings, strict=True):
            n = len(enc.ids)
            if n <= self.max_tokens:
                units.append((start, end, n, para))
                continue
            offsets = enc.offsets
            for i in range(0, n, self.max_tokens):
                window = offsets[i : i + self.max_tokens]
                units.append((start + window[0][0], start + window[-1][1], len(window), para and i == 0))
        return units

    def _pack(self, text: str) -> list[tuple[int, int]]:
        """Greedy packing of sentences into chunks; a new chunk starts with the last ``overlap`` tokens."""
        assert self.max_tokens is not None
        units = self._pieces(text)
        spans: list[tuple[int, int]] = []
        current: list[tuple[int, int, int, bool]] = []
        size = 0
        for unit in units:
            if current and size + unit[2] > self.max_tokens:
                spans.append((current[0][0], current[-1][1]))
                carried: list[tuple[int, int, int, bool]] = []
                carried_size = 0
                for prev in reversed(current):
                    if (
                        carried_size + prev[2] > self.overlap
                        or carried_size + prev[2] + unit[2] > self.max_tokens
                    ):
                        break
                    carried.insert(0, prev)
                    carried_size += prev[2]
                current, size = carried, carried_size
            current.append(unit)
            size += unit[2]
        if current:
            spans.append((current[0][0], current[-1][1]))
        return spans
