"""`winnow train`: fine-tune a cross-encoder from a recipe file or from command-line options."""

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from winnow.cli.common import console, fail


def train(
    recipe: Annotated[
        Path | None, typer.Argument(help="A recipe YAML (see recipes/); options below override it.")
    ] = None,
    data: Annotated[
        list[Path] | None, typer.Option("--data", "-d", help="Training jsonl (pairs or grouped); repeatable.")
    ] = None,
    beir: Annotated[
        list[Path] | None, typer.Option(help="A BEIR folder: train qrels + BM25 hard negatives; repeatable.")
    ] = None,
    dev: Annotated[
        list[Path] | None,
        typer.Option(help="Dev jsonl for early stopping and checkpoint choice; repeatable."),
    ] = None,
    base: Annotated[
        str | None, typer.Option("--base", "-b", help="Encoder or cross-encoder to start from.")
    ] = None,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Run folder (checkpoints, final model).")
    ] = None,
    loss: Annotated[
        str | None, typer.Option(help="listwise, bce, margin_mse or kl (the last two need --teacher).")
    ] = None,
    teacher: Annotated[
        str | None, typer.Option(help="Cross-encoder whose scores a distillation loss follows.")
    ] = None,
    epochs: Annotated[int | None, typer.Option(min=1)] = None,
    max_steps: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many optimiser steps.")
    ] = None,
    learning_rate: Annotated[float | None, typer.Option("--lr")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Queries per micro-batch.")] = None,
    grad_accumulation: Annotated[
        int | None, typer.Option(min=1, help="Micro-batches per optimiser step.")
    ] = None,
    negatives: Annotated[int | None, typer.Option(min=1, help="Negatives per positive.")] = None,
    max_length: Annotated[int | None, typer.Option(min=8, help="Max tokens of query + passage.")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda or mps (default: the best there is).")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads torch may use.")] = None,
    layers: Annotated[
        int | None, typer.Option(min=1, help="Keep only the base's first N layers (a cascade student).")
    ] = None,
    stop_after: Annotated[
        int | None, typer.Option(min=1, help="End this session after N steps (checkpointed); rerun to go on.")
    ] = None,
) -> None:
    """Fine-tune a cross-encoder reranker; rerun the same command to resume from the last checkpoint.

    Data: jsonl with {"query", "passage", "label"} per line (pairs) or {"query", "positives", "negatives"}
    (grouped), or a BEIR folder whose train qrels give positives and BM25 gives hard negatives.

    Example:

        winnow train recipes/winnow-minilm-l6.yaml

        winnow train --base winnow-minilm-l6 --data mine.jsonl --dev mine_dev.jsonl --output runs/mine

        winnow train recipes/winnow-minilm-l2.yaml   # a 2-layer student distilled from the default
    """
    from winnow.training import RecipeError, TrainConfig, TrainingDataError
    from winnow.training import train as run_training

    sources = [{"path": str(p)} for p in data or []] + [
        {"beir": str(p), "split": "train"} for p in beir or []
    ]
    overrides = {
        "data": sources or None,
        "dev": [{"path": str(p)} for p in dev] if dev else None,
        "base": base,
        "output": output,
        "loss": loss,
        "teacher": teacher,
        "epochs": epochs,
        "max_steps": max_steps,
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "grad_accumulation": grad_accumulation,
        "negatives": negatives,
        "max_length": max_length,
        "seed": seed,
        "device": device,
        "threads": threads,
        "layers": layers,
    }
    try:
        if recipe is not None:
            if recipe.is_dir():
                fail(f"recipe {recipe} is a folder; give a recipe .yaml file (see recipes/)", 2)
            if not recipe.is_file():
                fail(f"no such recipe file: {recipe}", 2)
            config = TrainConfig.from_yaml(recipe, **overrides)
        else:
            if not sources:
                raise typer.BadParameter("give a recipe file, or training data with --data or --beir")
            config = TrainConfig(**{k: v for k, v in overrides.items() if v is not None})
        result = run_training(config, stop_after=stop_after)
    except (RecipeError, TrainingDataError, FileNotFoundError) as exc:
        fail(str(exc), 2)
    table = Table(title="winnow train")
    table.add_column("")
    table.add_column("")
    table.add_row("model", str(result.model_dir))
    table.add_row("steps", str(result.steps))
    table.add_row("best dev step", str(result.best_step))
    if result.dev:
        table.add_row("dev nDCG@10", f"{result.dev['ndcg@10']:.4f}")
    table.add_row("stopped early", "yes" if result.stopped_early else "no")
    table.add_row("finished", "yes" if result.finished else "no: rerun the same command to continue")
    table.add_row("seconds (this session)", f"{result.seconds:.0f}")
    console.print(table)
