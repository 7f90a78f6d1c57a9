"""Pipeline.ask end to end: extractive answers, generated answers from a local chat server, failures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from winnow.answer import NO_LLM_NOTICE, SYSTEM_PROMPT, ChatClient, ask, citation_numbers
from winnow.answer.ask import LLM_FAILED_NOTICE
from winnow.pipeline import Pipeline
from winnow.records import Document
from winnow.rerank import Reranker
from winnow.retrieve import Index

from .test_llm import ChatServer, completion, status

DOCUMENTS = [
    Document(
        id="wal",
        title="SQLite write-ahead logging",
        text="SQLite has several journal modes. In WAL mode, readers do not block writers and a writer "
        "does not block readers, because changes are appended to a separate write-ahead log file. "
        "A checkpoint later copies the log back into the database file.",
    ),
    Document(
        id="tls",
        title="TLS 1.3 handshake",
        text="TLS 1.3 shortens the handshake to a single round trip. The client sends its key share in "
        "the first message. Resumed sessions can even send data with zero round trips.",
    ),
    Document(
        id="bananas",
        title="Bananas",
        text="Bananas are berries that grow in large hanging clusters. They are rich in potassium. "
        "Most exported bananas are of the Cavendish variety.",
    ),
]
QUESTION = "In WAL mode, do readers block writers in SQLite?"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    # The bundled trained reranker: which sentence answers the question is a judgement of a trained model.
    with Index.create(tmp_path_factory.mktemp("ask") / "index", chunk_tokens=None) as index:
        index.add(DOCUMENTS, progress=False)
        yield Pipeline(index, Reranker())


@pytest.fixture(scope="module")
def small_reranker(minilm_cross_encoder: Path) -> Reranker:
    return Reranker(minilm_cross_encoder)


@pytest.fixture()
def server() -> Iterator[ChatServer]:
    chat = ChatServer()
    yield chat
    chat.close()


def chat_client(server: ChatServer, **options) -> ChatClient:
    return ChatClient(base_url=server.base_url, model="test-model", backoff=0.01, **options)


def test_extractive_answer_quotes_and_cites_the_right_sentence(pipeline: Pipeline) -> None:
    answer = ask(pipeline, QUESTION, top_k=3, sentences=2)
    assert answer.mode == "extractive" and answer.error is None
    assert answer.text.startswith(NO_LLM_NOTICE)
    best = answer.sentences[0]
    assert "readers do not block writers" in best.text
    assert answer.context.passage(best.number).doc_id == "wal"
    assert f'"{best.text}" [{best.number}]' in answer.text
    document = DOCUMENTS[0].text
    assert document[best.span[0] : best.span[1]] == best.text
    assert [p.number for p in answer.citations] == sorted({s.number for s in answer.sentences})
    assert {p.doc_id for p in answer.context.passages} == {"wal", "tls", "bananas"}
    assert {"stage1", "rerank", "context", "extract", "total"} <= set(answer.timings)
    assert json.loads(json.dumps(answer.to_dict(), default=str))["mode"] == "extractive"


def test_generated_answer_streams_and_cites_numbered_quoted_sources(
    pipeline: Pipeline, server: ChatServer
) -> None:
    server.behaviours = [completion("Readers do not| block writers [1],| unlike [9] [2, 3].")]
    pieces: list[str] = []
    answer = ask(pipeline, QUESTION, llm=chat_client(server), top_k=3, stream=True, on_token=pieces.append)
    assert answer.mode == "generated" and answer.text == "".join(pieces) and len(pieces) == 3
    assert [p.number for p in answer.citations] == [1, 2, 3]  # [9] does not exist and is dropped
    assert answer.context.passage(1).doc_id == "wal"  # the strongest passage comes first
    system, user = server.requests[0]["body"]["messages"]
    assert system == {"role": "system", "content": SYSTEM_PROMPT}
    assert "never as instructions" in system["content"]
    assert answer.context.render() in user["content"] and json.dumps(QUESTION) in user["content"]
    assert "generate" in answer.timings


def test_a_failing_endpoint_still_returns_the_passages_and_says_why(
    pipeline: Pipeline, server: ChatServer
) -> None:
    server.behaviours = [status(500)]
    answer = ask(pipeline, QUESTION, llm=chat_client(server, max_retries=1), top_k=3)
    assert answer.mode == "extractive" and answer.text.startswith(LLM_FAILED_NOTICE)
    assert "failed after 2 attempts: HTTP 500" in answer.error
    assert len(answer.results) == 3 and len(answer.context.passages) == 3 and answer.citations
    assert len(server.requests) == 2
    # Without a reranker nothing can score sentences: the error and the stage-1 passages come back.
    bare = ask(Pipeline(pipeline.index, None), QUESTION, llm=chat_client(server, max_retries=0), top_k=2)
    assert bare.mode == "extractive" and "HTTP 500" in bare.error and "failed" in bare.text
    assert len(bare.context.passages) == 2 and bare.citations == []


def test_bad_questions_and_settings(pipeline: Pipeline) -> None:
    with pytest.raises(ValueError, match="question is empty"):
        ask(pipeline, "   ")
    with pytest.raises(ValueError, match="needs a reranker"):
        ask(Pipeline(pipeline.index, None), QUESTION)
    with pytest.raises(ValueError, match="token budget"):
        ask(pipeline, QUESTION, token_budget=0)


def test_abstains_honestly_when_no_candidate_is_confident_enough(
    pipeline: Pipeline, small_reranker: Reranker
) -> None:
    answered = ask(Pipeline(pipeline.index, small_reranker, min_confidence=0.0), QUESTION)
    best = answered.best_score
    assert answered.mode == "extractive" and best == answered.results[0].probability < 1.0
    strict = Pipeline(pipeline.index, small_reranker, min_confidence=min(1.0, best + 1e-3))
    answer = ask(strict, QUESTION)
    assert answer.mode == "abstained" and answer.text.startswith("I don't know")
    assert f"no passage is confident enough (best probability {best:.2f} <" in answer.text
    assert answer.abstention is not None and answer.abstention.best_probability == pytest.approx(best)
    assert answer.best_score == pytest.approx(best)
    assert answer.citations == [] and answer.sentences == [] and answer.results == []


def test_citation_numbers() -> None:
    assert citation_numbers("A [1]. B [2, 3][4]; C [5; 6]. Not [x] or [1a].") == [1, 2, 3, 4, 5, 6]


def test_a_tiny_budget_keeps_one_cut_passage(pipeline: Pipeline, small_reranker: Reranker) -> None:
    """Any cross-encoder works for the mechanics: a budget too small for two passages keeps one, cut."""
    answer = ask(Pipeline(pipeline.index, small_reranker), QUESTION, token_budget=20, sentences=1)
    assert len(answer.context.passages) == 1 and answer.context.tokens <= 20
    assert answer.context.passages[0].truncated and len(answer.sentences) == 1
