"""`winnow ask`: answer a question from an index, with numbered sources."""

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from winnow.cli.common import (
    DEFAULT_INDEX,
    CascadeKeepOption,
    CascadeOption,
    IndexOption,
    MinConfidenceOption,
    RerankerModelOption,
    build_reranker,
    console,
    err_console,
    errors,
    open_stage1,
    short_source,
    snippet,
)
from winnow.rerank.cascade import DEFAULT_CASCADE_KEEP

if TYPE_CHECKING:
    from winnow.answer import Answer


def ask(
    question: Annotated[str, typer.Argument(help="The question to answer.")],
    index_dir: IndexOption = DEFAULT_INDEX,
    model: RerankerModelOption = None,
    cascade: CascadeOption = None,
    cascade_keep: CascadeKeepOption = DEFAULT_CASCADE_KEEP,
    llm_base_url: Annotated[
        str | None,
        typer.Option(
            help="OpenAI-compatible base URL, e.g. http://localhost:8000/v1 (env WINNOW_LLM_BASE_URL)."
        ),
    ] = None,
    llm_model: Annotated[str | None, typer.Option(help="Chat model name (env WINNOW_LLM_MODEL).")] = None,
    llm_api_key: Annotated[
        str | None, typer.Option(help="API key (env WINNOW_LLM_API_KEY, else OPENAI_API_KEY).")
    ] = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds to wait for the chat endpoint.")] = 60.0,
    retries: Annotated[int, typer.Option(min=0, help="Extra attempts after a retryable failure.")] = 2,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="Reranked passages to answer from.")] = 5,
    candidates: Annotated[int, typer.Option(min=1, help="Stage-1 candidates handed to the reranker.")] = 50,
    budget: Annotated[int, typer.Option(min=1, help="Token budget of the passages in the prompt.")] = 1500,
    min_confidence: MinConfidenceOption = None,
    stream: Annotated[
        bool, typer.Option(help="Print the answer as it is generated (--no-stream: at the end).")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
) -> None:
    """Answer a question from an index, citing numbered sources.

    With a chat endpoint (options or environment; any OpenAI-compatible provider), a model writes it.
    Without one, the best-matching sentences of the passages are quoted.
    If the endpoint fails, the error and the passages are still shown (exit code 1).
    When no passage's calibrated probability reaches --min-confidence, it answers "I don't know" in one
    line (exit code 0); --min-confidence 0 answers anyway.

    Example:

        winnow ask "why do reads block writes in sqlite?" --index .winnow-index

        WINNOW_LLM_BASE_URL=http://localhost:11434/v1 WINNOW_LLM_MODEL=llama3.1 \\
            winnow ask "how does TLS 1.3 save a round trip?" --index .winnow-index
    """
    from winnow.answer import ChatClient
    from winnow.answer import ask as ask_question
    from winnow.pipeline import Pipeline
    from winnow.signals.abstention import effective_min_confidence

    with errors():
        llm = ChatClient.from_env(
            base_url=llm_base_url, model=llm_model, api_key=llm_api_key, timeout=timeout, max_retries=retries
        )
        if not question.strip():
            raise ValueError("question is empty: ask something, e.g. winnow ask 'what is BM25?'")
        streaming = stream and llm is not None and not as_json
        streamed: list[str] = []

        def write(piece: str) -> None:
            streamed.append(piece)
            sys.stdout.write(piece)
            sys.stdout.flush()

        with open_stage1(index_dir) as idx:
            reranker = build_reranker(model, cascade, cascade_keep)
            threshold = effective_min_confidence(min_confidence, reranker)
            answer = ask_question(
                Pipeline(idx, reranker, min_confidence=threshold),
                question,
                llm=llm,
                candidates=candidates,
                top_k=top_k,
                token_budget=budget,
                stream=streaming,
                on_token=write,
            )
    if as_json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, default=str))
    else:
        if streamed:
            sys.stdout.write("\n")
        if answer.abstention is not None:
            hint = "; --min-confidence 0 answers anyway"
            console.print(escape(answer.text.removesuffix(".") + hint), highlight=False, soft_wrap=True)
        elif not (streamed and answer.mode == "generated"):
            console.print(escape(answer.text), highlight=False)
        _print_sources(answer)
    if answer.error:
        err_console.print(f"[red]error:[/red] {escape(answer.error)}")
        raise typer.Exit(1)


def _print_sources(answer: "Answer") -> None:
    if not answer.context.passages:
        return
    cited = {p.number for p in answer.citations}
    console.print("\n[bold]Sources[/bold]", highlight=False)
    for p in answer.context.passages:
        mark = "*" if p.number in cited else " "
        where = short_source(p.source or p.doc_id or "")
        span = f", chars {p.span[0]}-{p.span[1]}" if p.span else ""
        title = f"{p.title} — " if p.title else ""
        label = escape(f"{mark}[{p.number}] {title}{where}{span}: {snippet(p.text, 70)}")
        console.print(label, highlight=False)
    t = answer.timings
    console.print(
        f"[dim]{answer.mode}; {len(answer.results)} passages, {answer.context.tokens} context tokens; "
        f"{t.get('total', 0):.0f} ms[/dim]",
        highlight=False,
    )
