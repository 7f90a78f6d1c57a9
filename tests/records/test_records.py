"""The one candidate record and its one adapter: every input shape a caller brings, read the same way,
and the date and authority rules every stage shares."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from haystack import Document as HaystackDocument
from langchain_core.documents import Document as LangChainDocument
from llama_index.core.schema import TextNode

from winnow.records import DEFAULT_AUTHORITY, AuthorityRules, Candidate, as_candidate, parse_datetime
from winnow.rerank.inputs import document_texts
from winnow.retrieve.filters import Filters
from winnow.retrieve.ingest import IngestReport, iter_documents
from winnow.signals import Signals, combine
from winnow.signals.combine import SignalInput
from winnow.signals.freshness import DateCounts, freshness


def test_a_candidate_passes_through_and_a_string_gets_its_position_as_rank() -> None:
    hit = Candidate(text="t", doc_id="d", rank=7, updated_at="2024-01-01", authority=0.9)
    assert as_candidate(hit, 0) is hit
    assert as_candidate("plain", 4) == Candidate(text="plain", rank=5)


@pytest.mark.parametrize("key", ["text", "content", "page_content"])
def test_a_dict_with_any_text_key_reads_every_field(key: str) -> None:
    item = {
        key: "the passage",
        "id": 42,
        "chunk_id": "c1",
        "title": "T",
        "source": "kb/a.md",
        "span": [3, 14],
        "score": 0.7,
        "updated_at": "2024-05-01",
        "authority": 1,
        "metadata": {"shelf": 1},
    }
    got = as_candidate(item, 2)
    assert got == Candidate(
        text="the passage",
        doc_id="42",
        chunk_id="c1",
        title="T",
        source="kb/a.md",
        span=(3, 14),
        score=0.7,
        rank=3,
        updated_at="2024-05-01",
        authority=1.0,
        metadata={"shelf": 1},
    )
    assert got.metadata is not item["metadata"]  # a copy: the caller's dict is never changed


def test_text_beats_content_and_top_level_fields_beat_metadata() -> None:
    item = {"content": "second", "text": "first", "source": "top", "metadata": {"source": "meta", "x": 1}}
    got = as_candidate(item, 0)
    assert (got.text, got.source, got.metadata) == ("first", "top", {"source": "meta", "x": 1})
    assert as_candidate({"text": "t", "doc_id": "a", "id": "b"}, 0).doc_id == "a"


def test_a_rank_or_score_that_is_not_a_number_is_not_taken_for_one() -> None:
    got = as_candidate({"text": "t", "rank": "first", "score": True, "authority": "high"}, 5)
    assert (got.rank, got.score, got.authority) == (6, None, None)
    for rank in (math.nan, 2.5, 0, True):
        assert as_candidate({"text": "t", "rank": rank}, 5).rank == 6
    assert as_candidate({"text": "t", "rank": 2}, 5).rank == 2


def test_langchain_documents_keep_their_fields_in_metadata() -> None:
    document = LangChainDocument(
        page_content="WAL lets readers and writers proceed together.",
        id="wal",
        metadata={"source": "docs/sqlite.md", "title": "SQLite WAL", "updated_at": "2024-02-03", "page": 4},
    )
    got = as_candidate(document, 0)
    assert (got.text, got.doc_id, got.title, got.source) == (
        document.page_content,
        "wal",
        "SQLite WAL",
        "docs/sqlite.md",
    )
    assert got.updated_at == "2024-02-03" and got.metadata["page"] == 4 and got.rank == 1


def test_llama_index_nodes_and_haystack_documents() -> None:
    node = TextNode(text="node text", id_="n1", metadata={"source": "wiki/n.md", "authority": 0.8})
    got = as_candidate(node, 1)
    assert (got.text, got.source, got.authority, got.rank) == ("node text", "wiki/n.md", 0.8, 2)
    hay = as_candidate(HaystackDocument(content="haystack text", score=0.25), 0)
    assert (hay.text, hay.score) == ("haystack text", 0.25) and hay.doc_id  # Haystack's content hash id


def test_a_plain_object_with_a_text_attribute() -> None:
    class Hit:
        text = "object text"
        title = "Hit"
        span = (0, 11)

    got = as_candidate(Hit(), 0)
    assert (got.text, got.title, got.span, got.doc_id) == ("object text", "Hit", (0, 11), None)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (None, "document 3 is None"),
        (
            {"title": "no text", "text": 5},
            r"document 3 is a dict without a string field .*\(its keys: title, text\)",
        ),
        ({}, r"document 3 is a dict .*\(its keys: none\)"),
        (42, "document 3 is a int with no text; expected a string, or a dict/object"),
        ({"text": "t", "span": "0-5"}, r"document 3: span must be a \(start, end\) pair"),
        ({"text": "t", "span": [1, 2, 3]}, r"document 3: span must be a \(start, end\) pair"),
    ],
)
def test_bad_items_are_one_line_errors_naming_the_position(item: object, message: str) -> None:
    with pytest.raises(TypeError, match=message) as caught:
        as_candidate(item, 3)
    assert "\n" not in str(caught.value)


def test_the_reranker_reads_documents_through_the_same_adapter() -> None:
    documents = ["a", {"content": "b"}, LangChainDocument(page_content="c"), TextNode(text="d")]
    assert document_texts(documents) == ["a", "b", "c", "d"]
    with pytest.raises(TypeError, match="document 1 is None"):
        document_texts(["a", None])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("2024-01-02", datetime(2024, 1, 2, tzinfo=UTC)),
        ("2024-01-02T03:04Z", datetime(2024, 1, 2, 3, 4, tzinfo=UTC)),
        (" 2024-01-02T05:04+02:00 ", datetime(2024, 1, 2, 3, 4, tzinfo=UTC)),
        (datetime(2024, 1, 2, 3, 4), datetime(2024, 1, 2, 3, 4, tzinfo=UTC)),  # naive: taken as UTC
        (
            datetime(2024, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=-5))),
            datetime(2024, 1, 2, 8, 4, tzinfo=UTC),
        ),
        (1_700_000_000, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        (0.5, datetime(1970, 1, 1, 0, 0, 0, 500_000, tzinfo=UTC)),
    ],
)
def test_parse_datetime_reads_iso_datetimes_and_unix_seconds_as_utc(value: object, expected: object) -> None:
    parsed = parse_datetime(value)
    assert parsed == expected
    assert parsed is None or parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "a.jsonl:3: updated_at must be an ISO date or Unix seconds, not bool"),
        ({"year": 2020}, "not dict"),
        ("last tuesday", r"a.jsonl:3: updated_at 'last tuesday' is not an ISO date \(YYYY-MM-DD"),
        (1e20, "a.jsonl:3: updated_at 1e\\+20 is out of range"),
        (math.nan, "updated_at nan is out of range"),
        (datetime.min.replace(tzinfo=timezone(timedelta(hours=5))), "is out of range"),
    ],
)
def test_parse_datetime_refuses_what_is_not_a_date_naming_where(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_datetime(value, "a.jsonl:3")


def test_a_bool_is_not_a_date_anywhere(tmp_path: Path) -> None:
    # ingest skips the line, a filter refuses it, and freshness counts it as malformed without raising
    (tmp_path / "d.jsonl").write_text(
        '{"id": "ok", "text": "fine", "updated_at": "2024-01-01"}\n'
        '{"id": "flag", "text": "x", "updated_at": true}\n'
        '{"id": "far", "text": "x", "updated_at": 1e20}\n'
    )
    report = IngestReport()
    assert [d.id for d in iter_documents([tmp_path], report)] == ["ok"]
    assert [where.rsplit(":", 1)[1] for where, _ in report.skipped] == ["2", "3"]
    assert "not bool" in report.skipped[0][1] and "out of range" in report.skipped[1][1]
    with pytest.raises(ValueError, match=r"filter updated_after: updated_at must be .* not bool"):
        Filters.parse({"updated_after": True})
    counts = DateCounts()
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert freshness(True, now, 30, "oldest", 0.5, counts, "doc") == 0.0
    assert freshness(1e20, now, 30, "neutral", 0.5, counts, "doc") == 0.5
    assert (counts.missing, counts.malformed) == (0, 2)


def test_authority_rules_first_pattern_then_stored_weight_then_default() -> None:
    rules = AuthorityRules({"*/handbook/*": 0.9, "*.md": 0.2}, default=0.4)
    assert rules.weight("kb/handbook/a.md") == 0.9  # both match: the first pattern wins
    assert rules.weight("notes/a.md", stored=0.7) == 0.2  # a pattern beats the stored weight
    assert rules.weight("notes/a.txt", stored=0.7) == 0.7
    assert rules.weight("notes/a.txt", stored=3.0) == 1.0  # clipped to [0, 1]
    for stored in (None, math.nan, True, "0.9"):
        assert rules.weight("notes/a.txt", stored=stored) == 0.4
    assert AuthorityRules().weight("x") == DEFAULT_AUTHORITY == 0.5


@pytest.mark.parametrize("patterns", [{"*": 2.0}, {"*": -0.1}, {"*": "0.5"}, {"*": True}, {"*": math.nan}])
def test_authority_weights_outside_zero_to_one_are_refused_naming_the_pattern(patterns: dict) -> None:
    with pytest.raises(ValueError, match=r"authority weight for '\*' must be a number in \[0, 1\]"):
        AuthorityRules(patterns)
    with pytest.raises(ValueError, match=r"authority weight for 'default'"):
        AuthorityRules({}, default=patterns["*"])


def test_the_authority_signal_applies_the_same_rules() -> None:
    patterns = {"forum/*": 0.1, "docs/*": 0.9}
    rules = AuthorityRules(patterns, default=0.3)
    items = [
        SignalInput(0.5, "a", "a", source="forum/x", authority=0.8),
        SignalInput(0.5, "b", "b", source="misc/y", authority=0.6),
        SignalInput(0.5, "c", "c", source="misc/z"),
    ]
    outcome = combine(items, Signals(authority_weight=1, authority_patterns=patterns, default_authority=0.3))
    weights = {c.index: c.components["authority"] for c in outcome.results}
    assert weights == {i: rules.weight(item.source, item.authority) for i, item in enumerate(items)}
    assert weights == {0: 0.1, 1: 0.6, 2: 0.3}
