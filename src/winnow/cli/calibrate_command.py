"""`winnow calibrate`: fit Platt scaling or isotonic regression on labelled data, report ECE and a
reliability diagram, propose an abstention threshold, and save the calibration beside the model."""

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from winnow.cli.common import console, err_console, fail
from winnow.models import DEFAULT_RERANKER


def calibrate(
    data: Annotated[
        str,
        typer.Argument(
            help="scifact / nfcorpus (in ../shared/data), a BEIR folder, or a pairs .jsonl "
            '({"query", "passage", "label"} per line).'
        ),
    ],
    model: Annotated[
        str, typer.Option("--model", "-m", help="Cross-encoder name or path.")
    ] = DEFAULT_RERANKER,
    method: Annotated[
        str, typer.Option(help="platt (2 parameters) or isotonic (needs more data).")
    ] = "platt",
    split: Annotated[str, typer.Option(help="Qrels split fitted on (BEIR data).")] = "train",
    eval_split: Annotated[
        str | None, typer.Option(help="Held-back qrels split to measure ECE on (BEIR data), e.g. test.")
    ] = None,
    k: Annotated[int, typer.Option(min=1, help="BM25 candidates per query scored (BEIR data).")] = 10,
    max_queries: Annotated[int | None, typer.Option(min=1, help="Use only the first N queries.")] = None,
    target_precision: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Precision the proposed threshold must reach.")
    ] = 0.8,
    max_length: Annotated[int, typer.Option(min=16, help="Reranker max_length (as you serve it).")] = 512,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Where to save calibration.json (default: beside the model)."),
    ] = None,
    diagram: Annotated[
        Path | None,
        typer.Option(help="Reliability diagram PNG (default runs/calibrate-<data>/reliability.png)."),
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Score every pair afresh.")] = False,
) -> None:
    """Calibrate a cross-encoder's probabilities on labelled data and propose an abstention threshold.

    BEIR data: each judged query's BM25 top-k candidates are scored and labelled by the qrels.
    Prints ECE before (plain sigmoid) and after, writes a reliability diagram, proposes the lowest
    threshold whose answered queries reach --target-precision (best candidate relevant) and the answer
    rate it implies. Saves calibration.json beside the model when that folder is writable (never inside
    an installed package), else under $WINNOW_CACHE_DIR/calibration (default ~/.cache/winnow/calibration);
    the Reranker loads it from there by default.

    Example:

        winnow calibrate scifact --split train --eval-split test --method platt

        winnow calibrate labelled_pairs.jsonl --model ./my-reranker --method isotonic
    """
    from winnow.errors import WinnowError
    from winnow.evaluation.calibration_data import beir_scores, pairs_scores, scorer_for
    from winnow.rerank.calibration import (
        CALIBRATION_KINDS,
        SigmoidCalibrator,
        calibration_target,
        expected_calibration_error,
        fit_calibrator,
        reliability_diagram,
        save_calibrator,
    )
    from winnow.signals.abstention import answer_stats, propose_threshold

    if method not in CALIBRATION_KINDS[1:]:
        raise typer.BadParameter(f"must be platt or isotonic, not {method!r}", param_hint="--method")
    is_pairs = data.endswith(".jsonl") and Path(data).is_file()
    if is_pairs and eval_split:
        raise typer.BadParameter("--eval-split needs BEIR data, not a pairs file", param_hint="--eval-split")
    try:
        scorer = scorer_for(model, max_length, cache=not no_cache)
        if is_pairs:
            fitted = pairs_scores(data, scorer)
        else:
            fitted = beir_scores(data, split, scorer, k, max_queries)
        held = beir_scores(data, eval_split, scorer, k, max_queries) if eval_split else None
        logits, labels = fitted.flat()
        calibrator = fit_calibrator(method, logits, labels)
    except (WinnowError, ValueError, FileNotFoundError) as exc:
        fail(str(exc), 2)
    for reason, count in fitted.skipped.items():
        err_console.print(f"[yellow]skipped {count} queries:[/yellow] {reason.replace('_', ' ')}")

    measured, where = (held, f"held-back split {eval_split!r}") if held else (fitted, "the fitting data")
    test_logits, test_labels = measured.flat()
    sigmoid = SigmoidCalibrator()
    before = expected_calibration_error(sigmoid.transform(test_logits), test_labels)
    after = expected_calibration_error(calibrator.transform(test_logits), test_labels)
    table = Table(title=f"Calibration of {model} ({len(logits)} pairs, {int(labels.sum())} relevant)")
    table.add_column(f"ECE on {where}")
    table.add_column("value", justify="right")
    table.add_row("before (sigmoid)", f"{before:.4f}")
    table.add_row(f"after ({method})", f"{after:.4f}")
    console.print(table)

    name = Path(data).stem if is_pairs else Path(data).name
    diagram = diagram or Path("runs") / f"calibrate-{name}" / "reliability.png"
    reliability_diagram(
        {
            "sigmoid": (sigmoid.transform(test_logits), test_labels),
            method: (calibrator.transform(test_logits), test_labels),
        },
        diagram,
        title=f"{model} on {name} ({where})",
    )

    best_logits, best_relevant = fitted.best()
    proposal = propose_threshold(calibrator.transform(best_logits), best_relevant, target_precision)
    console.print(
        f"Proposed min_confidence [bold]{proposal.threshold:.3f}[/bold]: precision {proposal.precision:.3f}, "
        f"answer rate {proposal.answer_rate:.3f} on {proposal.queries} fitting queries"
        + ("" if proposal.reached else f" [yellow](target precision {target_precision} not reached)[/yellow]")
    )
    if held:
        precision, rate = answer_stats(
            calibrator.transform(held.best()[0]), held.best()[1], proposal.threshold
        )
        console.print(f"On {where}: precision {precision:.3f}, answer rate {rate:.3f}")

    from winnow.models import resolve_model

    model_dir = resolve_model(model)
    target = output or calibration_target(model_dir)
    save_calibrator(
        calibrator,
        target,
        model_dir,
        model=model,
        fitted_on={
            "data": data,
            "split": None if is_pairs else split,
            "k": None if is_pairs else k,
            "queries": len(fitted.query_ids),
            "pairs": len(logits),
        },
        ece={"measured_on": where, "before": before, "after": after},
        threshold={
            "value": proposal.threshold,
            "target_precision": target_precision,
            "precision": proposal.precision,
            "answer_rate": proposal.answer_rate,
        },
    )
    console.print(f"Saved {target}; reliability diagram {diagram}")
    if output is not None and target.parent.resolve() != model_dir.resolve():
        console.print(
            "Pass it with Reranker(calibrator=load_calibrator(path)); it is not found by default there."
        )
