"""`winnow eval`: run the evaluation grid on a data set and write JSON, Markdown and plots."""

from pathlib import Path
from typing import Annotated

import typer

from winnow.cli.common import console, fail


def _ints(text: str, option: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"{option} takes comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise typer.BadParameter(f"{option} needs at least one positive integer, got {text!r}")
    return values


def eval_dataset(
    dataset: Annotated[
        str,
        typer.Argument(
            help="scifact, nfcorpus, dl19 (in ../shared/data), a BEIR folder, or a query jsonl + --corpus."
        ),
    ],
    reranker: Annotated[
        str | None,
        typer.Option(
            "--reranker",
            "-r",
            help="Cross-encoder name or path, 'bi-encoder:<model>', 'default' (Winnow's) or 'none'.",
        ),
    ] = "default",
    modes: Annotated[
        str | None,
        typer.Option(help="Stage-1 modes, comma-separated: bm25,dense,hybrid,rrf (or 'supplied')."),
    ] = None,
    depths: Annotated[str, typer.Option(help="Candidate depths, comma-separated.")] = "10,20,50,100",
    max_length: Annotated[str, typer.Option(help="Reranker max_length values, comma-separated.")] = "512",
    split: Annotated[str, typer.Option(help="Qrels split of a BEIR folder (qrels/<split>.tsv).")] = "test",
    run: Annotated[
        Path | None,
        typer.Option(help="A TREC run file: evaluate reranking of its candidates instead of stage 1."),
    ] = None,
    corpus: Annotated[
        Path | None, typer.Option(help="Documents (jsonl of id, text) for a query .jsonl data set.")
    ] = None,
    threshold: Annotated[
        int | None,
        typer.Option(min=1, help="Lowest grade counted relevant by binary metrics (default 1; dl19: 2)."),
    ] = None,
    embedding_model: Annotated[str, typer.Option(help="Bi-encoder of the dense stage 1.")] = "all-minilm-l6",
    latency_sample: Annotated[
        int, typer.Option(min=1, help="Queries whose reranking is timed afresh at every depth.")
    ] = 20,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Report folder (default runs/eval-<dataset>).")
    ] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda or mps (default: the best there is).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Score every pair afresh.")] = False,
) -> None:
    """Evaluate stage-1 modes × reranking on/off × candidate depths × max_length on a data set.

    Writes results.json (everything, per query), summary.md (the ten-second read) and PNG plots
    (depth.png, tradeoff.png, winloss.png). Built indexes and reranker scores are cached under
    $WINNOW_CACHE_DIR/eval (default ~/.cache/winnow/eval), so a second run only re-times.

    Example:

        winnow eval dl19 --reranker bi-encoder:all-minilm-l6

        winnow eval scifact --depths 10,20,50,100 -o runs/scifact

        winnow eval my_questions.jsonl --corpus my_docs.jsonl --reranker none
    """
    from rich.markdown import Markdown

    from winnow.errors import WinnowError
    from winnow.evaluation.datasets import load_dataset
    from winnow.evaluation.experiment import run_grid
    from winnow.evaluation.report import headline, write_report

    try:
        evalset = load_dataset(dataset, split=split, run=run, corpus=corpus)
    except WinnowError as exc:
        fail(str(exc), 2)
    for kind, issue in evalset.issues.items():
        console.print(
            f"[yellow]data issue:[/yellow] {kind.replace('_', ' ')}: {issue['count']}; {issue['effect']}"
        )
    spec = None if reranker in (None, "none") else reranker
    if spec == "default":
        from winnow.rerank import DEFAULT_RERANKER

        spec = DEFAULT_RERANKER
    try:
        experiment = run_grid(
            evalset,
            modes=modes.split(",") if modes else None,
            depths=_ints(depths, "--depths"),
            reranker=spec,
            max_lengths=_ints(max_length, "--max-length"),
            embedding_model=embedding_model,
            relevance_threshold=threshold,
            latency_sample=latency_sample,
            use_cache=not no_cache,
            device=device,
        )
    except (WinnowError, ValueError) as exc:
        fail(str(exc), 2)
    for warning in experiment.warnings:
        console.print(f"[bold yellow]warning:[/bold yellow] {warning}")
    folder = output or Path("runs") / f"eval-{evalset.name}"
    written = write_report(experiment, folder)
    console.print(Markdown("\n".join(headline(experiment))))
    console.print(f"Wrote {', '.join(str(path) for path in written)}")
