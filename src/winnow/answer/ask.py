"""Question in, answer with citations out: retrieve, rerank, assemble the context, then generate or extract.

Three outcomes, named by ``Answer.mode``: "generated" (a chat model wrote it from the numbered
sources), "extractive" (no model configured, or the model failed: the best source sentences, verbatim)
and "abstained" (nothing relevant enough was found: an honest "I don't know" with the best score).
Whatever happens, the retrieved passages come back with the answer, so a caller can show them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from winnow.answer.context import DEFAULT_TOKEN_BUDGET, Context, Passage, build_context, cited_passages
from winnow.answer.extractive import NO_LLM_NOTICE, Sentence, best_sentences, render_extractive
from winnow.answer.llm import ChatClient, LLMError
from winnow.answer.prompt import build_messages
from winnow.signals.abstention import Abstention

if TYPE_CHECKING:
    from winnow.pipeline import Pipeline, PipelineResponse, PipelineResult
    from winnow.retrieve.filters import Filters
    from winnow.retrieve.index import Mode

AnswerMode = Literal["generated", "extractive", "abstained"]
LLM_FAILED_NOTICE = "The language model failed: the best-matching sentences from the sources."
_CITATION = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer and everything it rests on.

    ``citations`` are the passages the text cites ([n] = ``context.passage(n)``), ``results`` the
    reranked results retrieved, ``context`` the numbered passages the answer was written from.
    ``error`` says why the chat model failed (the answer is then extractive); ``best_score`` is the
    best candidate's probability (its score when there is none), shown when the answer abstains;
    ``abstention`` is set when it abstained because no passage reached the pipeline's min_confidence.
    ``timings`` are milliseconds per step: stage1, rerank, context, generate or extract, total.
    """

    question: str
    text: str
    mode: AnswerMode
    citations: list[Passage]
    context: Context
    results: list[PipelineResult]
    timings: dict[str, float] = field(default_factory=dict)
    sentences: list[Sentence] = field(default_factory=list)
    error: str | None = None
    best_score: float | None = None
    abstention: Abstention | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (the CLI's ``--json``)."""
        return {
            "question": self.question,
            "mode": self.mode,
            "text": self.text,
            "citations": [p.number for p in self.citations],
            "sources": [p.to_dict() for p in self.context.passages],
            "sentences": [s.to_dict() for s in self.sentences],
            "error": self.error,
            "best_score": self.best_score,
            "min_confidence": self.abstention.threshold if self.abstention else None,
            "timings": self.timings,
            "context_tokens": self.context.tokens,
        }


def citation_numbers(text: str) -> list[int]:
    """Every number cited as [n], [n, m] or [n; m] in ``text``, in order of appearance."""
    return [int(n) for group in _CITATION.findall(text) for n in re.split(r"[,;]", group)]


def _best_score(response: PipelineResponse) -> float | None:
    """The best candidate's probability (its score when uncalibrated), whether or not the answer abstains."""
    if response.abstention is not None:
        return response.abstention.best_probability
    if not response.results:
        return None
    best = response.results[0]
    return best.probability if best.probability is not None else best.score


def ask(
    pipeline: Pipeline,
    question: str,
    *,
    llm: ChatClient | None = None,
    candidates: int = 50,
    top_k: int = 5,
    token_budget: int = DEFAULT_TOKEN_BUDGET,
    stream: bool = False,
    on_token: Callable[[str], None] | None = None,
    sentences: int = 3,
    filters: Filters | Mapping[str, Any] | None = None,
    mode: Mode | None = None,
) -> Answer:
    """Answer ``question`` from ``pipeline``'s index, citing the passages used as [n].

    ``llm`` is a ``ChatClient`` (``ChatClient()`` reads the endpoint from the environment); without
    one the answer is extractive: the ``sentences`` best source sentences. ``candidates`` are
    recalled, ``top_k`` reranked results feed a context of at most ``token_budget`` tokens. With
    ``stream=True`` the reply is streamed and each piece handed to ``on_token`` as it arrives.
    ``filters`` and ``mode`` go to ``Pipeline.search``. Raises ValueError on an empty question.
    """
    if not isinstance(question, str) or not question.strip():
        raise ValueError("question is empty: ask something, e.g. winnow ask 'what is BM25?'")
    if llm is None and pipeline.reranker is None:
        raise ValueError("an extractive answer needs a reranker to score sentences: give the Pipeline one")
    start = time.perf_counter()
    response = pipeline.search(
        question, candidates=max(candidates, top_k), top_k=top_k, filters=filters, mode=mode
    )
    timings = {key.removesuffix("_ms"): value for key, value in response.timings.items() if key != "total_ms"}
    results = list(response.results)
    best = _best_score(response)

    def finish(
        text: str, answer_mode: AnswerMode, context: Context, numbers: list[int], **extra: Any
    ) -> Answer:
        timings["total"] = (time.perf_counter() - start) * 1000
        cited = cited_passages(context, numbers)
        return Answer(
            question=question,
            text=text,
            mode=answer_mode,
            citations=cited,
            context=context,
            results=results,
            timings=timings,
            best_score=best,
            **extra,
        )

    step = time.perf_counter()
    tokenizer = pipeline.reranker.tokenizer if pipeline.reranker is not None else None
    context = build_context(results, budget=token_budget, tokenizer=tokenizer)
    timings["context"] = (time.perf_counter() - step) * 1000
    if not response.confident:
        summary = response.abstention.summary if response.abstention else "no passage is confident enough"
        return finish(f"I don't know: {summary}.", "abstained", context, [], abstention=response.abstention)
    if not context.passages:
        return finish(
            "I don't know: the index returned no passages for this question.", "abstained", context, []
        )

    error = None
    if llm is not None:
        step = time.perf_counter()
        try:
            text = _generate(llm, question, context, stream, on_token)
            timings["generate"] = (time.perf_counter() - step) * 1000
            return finish(text, "generated", context, citation_numbers(text))
        except LLMError as exc:
            error = str(exc)
    if pipeline.reranker is None:  # reached only when the chat model failed: nothing can score sentences
        return finish(
            "The language model failed; the sources are listed below.", "extractive", context, [], error=error
        )
    step = time.perf_counter()
    chosen = best_sentences(pipeline.reranker, question, context.passages, count=sentences)
    timings["extract"] = (time.perf_counter() - step) * 1000
    notice = NO_LLM_NOTICE if error is None else LLM_FAILED_NOTICE
    text = render_extractive(chosen, notice)
    return finish(text, "extractive", context, [s.number for s in chosen], sentences=chosen, error=error)


def _generate(
    llm: ChatClient, question: str, context: Context, stream: bool, on_token: Callable[[str], None] | None
) -> str:
    messages = build_messages(question, context)
    if not stream:
        return llm.complete(messages)
    pieces = []
    for piece in llm.stream(messages):
        pieces.append(piece)
        if on_token is not None:
            on_token(piece)
    return "".join(pieces)
