"""Write what an experiment measured: a JSON file with everything, a Markdown summary, and PNG plots.

The summary leads with the decision a reader needs ("Recall@5 from X to Y, +Z%", at what latency,
and whether the gain is significant); the table and plots follow for whoever wants the detail.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from winnow.evaluation.experiment import PRIMARY_METRIC, ConfigResult, ExperimentResult

TABLE_METRICS = ("nDCG@10", "Recall@5", "Recall@10", "Recall@100", "MRR@10", "MAP")


def to_json(experiment: ExperimentResult) -> dict[str, Any]:
    """Every number of the run, per configuration and per query, as plain JSON types."""
    from importlib.metadata import version

    return {
        "dataset": experiment.dataset,
        "settings": experiment.settings,
        "environment": {
            "winnow": version("winnow"),
            "ranx": version("ranx"),
            "python": platform.python_version(),
        },
        "wall_seconds": experiment.wall_seconds,
        "warnings": experiment.warnings,
        "significance": [test.as_dict() for test in experiment.significance],
        "configurations": [
            {
                "name": r.config.name,
                "mode": r.config.mode,
                "depth": r.config.depth,
                "reranker": r.config.reranker,
                "max_length": r.config.max_length,
                "valid": r.evaluation.valid,
                "metrics": r.evaluation.mean,
                "latency_ms": r.latency_ms,
                "per_query": r.evaluation.per_query,
            }
            for r in experiment.results
        ],
    }


def _change(before: float, after: float) -> str:
    if before == 0:
        return "n/a"
    return f"{(after - before) / before * 100:+.1f}%"


def _ms(value: float | int | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def headline(experiment: ExperimentResult) -> list[str]:
    """The few sentences a person reads first."""
    lines = []
    valid = [r for r in experiment.results if r.evaluation.valid]
    if not valid:
        return ["**No result:** every configuration's run shares nothing with the qrels (see warnings)."]
    stage1 = experiment.best(reranked=False)
    lines.append(
        f"- Best stage 1: **{stage1.config.name}**, {PRIMARY_METRIC} "
        f"{stage1.evaluation.mean[PRIMARY_METRIC]:.4f}, Recall@5 {stage1.evaluation.mean['Recall@5']:.4f}."
    )
    if any(r.config.reranker for r in valid):
        best = experiment.best(reranked=True)
        base = experiment.result(best.config.baseline())
        best_score, stage1_score = (
            best.evaluation.mean[PRIMARY_METRIC],
            stage1.evaluation.mean[PRIMARY_METRIC],
        )
        if best_score < stage1_score:
            lines.append(
                f"- **Reranking does not pay here:** the best reranked configuration, {best.config.name} "
                f"({PRIMARY_METRIC} {best_score:.4f}), is below {stage1.config.name} alone "
                f"({stage1_score:.4f}). Keep stage 1, or try another reranker."
            )
        for metric in (PRIMARY_METRIC, "Recall@5"):
            before, after = base.evaluation.mean[metric], best.evaluation.mean[metric]
            lines.append(
                f"- {metric} from {before:.4f} to {after:.4f}, {_change(before, after)} "
                f"(**{best.config.name}** against {base.config.name})."
            )
        latency = best.latency_ms
        lines.append(
            f"- Cost per query: stage 1 p50 {_ms(latency['stage1']['p50'])} ms, rerank p50 "
            f"{_ms(latency['rerank']['p50'])} ms / p95 {_ms(latency['rerank']['p95'])} ms, total p50 "
            f"{_ms(latency['total']['p50'])} ms / p95 {_ms(latency['total']['p95'])} ms."
        )
        for test in experiment.significance:
            verdict = "significant" if test.significant else "not significant"
            lines.append(
                f"- {test.metric}: p = {test.p_value:.4f} ({verdict} at 0.05, paired randomisation test, "
                f"{test.wins} wins / {test.losses} losses / {test.ties} ties over {test.queries} queries)."
            )
    return lines


def markdown(experiment: ExperimentResult) -> str:
    """The Markdown summary: headline, warnings, data issues, then the full table."""
    data = experiment.dataset
    settings = experiment.settings
    out = [
        f"# Evaluation: {data['name']}",
        "",
        f"{data['queries']} queries, {data['documents']} documents, {data['judgments']} judgments "
        f"({'graded' if data['graded'] else 'binary'}; "
        f"binary metrics count grade ≥ {data['relevance_threshold']}). "
        f"Reranker: {settings['reranker'] or 'none'}. Run took {experiment.wall_seconds:.0f} s.",
        "",
        *headline(experiment),
        "",
    ]
    if experiment.warnings:
        out += ["## Warnings", "", *[f"- {w}" for w in experiment.warnings], ""]
    if data["issues"]:
        out += ["## Data issues", ""]
        for kind, issue in data["issues"].items():
            examples = ", ".join(issue["examples"])
            out.append(f"- {kind.replace('_', ' ')}: {issue['count']} (e.g. {examples}); {issue['effect']}.")
        out.append("")
    out += [
        "## All configurations",
        "",
        "Latency in ms per query (p50 / p95); stage 1 timed on every query"
        + (
            f", reranking on {settings['latency_sample']} sampled queries scored afresh at each depth."
            if settings["reranker"]
            else "."
        ),
        "",
        "| configuration | "
        + " | ".join(TABLE_METRICS)
        + " | stage 1 p50 | rerank p50 / p95 | total p50 / p95 |",
        "|---|" + "---:|" * (len(TABLE_METRICS) + 3),
    ]
    for r in experiment.results:
        if r.evaluation.valid:
            cells = [f"{r.evaluation.mean[m]:.4f}" if m in r.evaluation.mean else "–" for m in TABLE_METRICS]
        else:
            cells = ["no overlap"] * len(TABLE_METRICS)
        lat = r.latency_ms
        out.append(
            f"| {r.config.name} | "
            + " | ".join(cells)
            + f" | {_ms(lat['stage1']['p50'])} | {_ms(lat['rerank']['p50'])} / {_ms(lat['rerank']['p95'])}"
            + f" | {_ms(lat['total']['p50'])} / {_ms(lat['total']['p95'])} |"
        )
    return "\n".join(out) + "\n"


def _series(experiment: ExperimentResult) -> dict[tuple[str, int | None], list[ConfigResult]]:
    """Results grouped by (mode, max_length or None), each list ordered by depth."""
    groups: dict[tuple[str, int | None], list[ConfigResult]] = {}
    for r in experiment.results:
        if r.evaluation.valid:
            groups.setdefault((r.config.mode, r.config.max_length), []).append(r)
    return {key: sorted(value, key=lambda r: r.config.depth) for key, value in groups.items()}


def _label(key: tuple[str, int | None]) -> str:
    mode, length = key
    return mode if length is None else f"{mode} + rerank({length})"


def _styles(series: dict[tuple[str, int | None], list[ConfigResult]]) -> dict[tuple[str, int | None], dict]:
    """One colour per stage-1 mode in every plot; dashed without reranking, a marker per max_length."""
    modes = list(dict.fromkeys(mode for mode, _ in series))
    lengths = sorted({length for _, length in series if length is not None})
    markers = "osD^v"
    return {
        (mode, length): {
            "color": f"C{modes.index(mode) % 10}",
            "linestyle": "--" if length is None else "-",
            "marker": "o" if length is None else markers[lengths.index(length) % len(markers)],
        }
        for mode, length in series
    }


def plot(experiment: ExperimentResult, folder: Path) -> list[Path]:
    """PNG plots: quality against depth, quality against latency, per-query wins and losses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = _series(experiment)
    if not series:
        return []
    paths = []
    styles = _styles(series)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for key, rows in series.items():
        depths = [r.config.depth for r in rows]
        for ax, metric in zip(axes, (PRIMARY_METRIC, "Recall@5"), strict=True):
            values = [r.evaluation.mean[metric] for r in rows]
            ax.plot(depths, values, label=_label(key), **styles[key])
        if key[1] is None:
            ceiling = [r.evaluation.mean.get(f"Recall@{r.config.depth}") for r in rows]
            if all(value is not None for value in ceiling):
                axes[1].plot(
                    depths,
                    ceiling,
                    ":",
                    marker=".",
                    color=styles[key]["color"],
                    label=f"{key[0]}: Recall@depth (ceiling)",
                )
    for ax, metric in zip(axes, (PRIMARY_METRIC, "Recall@5 (and stage-1 Recall@depth)"), strict=True):
        ax.set_xscale("log")
        ax.set_xticks(experiment.settings["depths"], [str(d) for d in experiment.settings["depths"]])
        ax.set_xlabel("candidate depth")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=7)
    fig.suptitle(f"{experiment.dataset['name']}: quality against candidate depth")
    fig.tight_layout()
    paths.append(folder / "depth.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for key, rows in series.items():
        points = [
            (r.latency_ms["total"]["p50"], r.evaluation.mean[PRIMARY_METRIC], r.config.depth) for r in rows
        ]
        points = [p for p in points if p[0] is not None]
        if not points:
            continue
        ax.plot([p[0] for p in points], [p[1] for p in points], label=_label(key), **styles[key])
        # Stage 1 alone gives one point for every depth (same top 10, one search): label it once.
        depths_at: dict[tuple[float, float], list[int]] = {}
        for x, y, depth in points:
            depths_at.setdefault((x, y), []).append(depth)
        for (x, y), depths in depths_at.items():
            label = str(depths[0]) if len(depths) == 1 else f"{min(depths)}-{max(depths)}"
            ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel("total latency per query, p50 (ms)")
    ax.set_ylabel(PRIMARY_METRIC)
    ax.set_title(f"{experiment.dataset['name']}: quality against latency (labels: depth)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(folder / "tradeoff.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    if experiment.significance:
        test = next(t for t in experiment.significance if t.metric == PRIMARY_METRIC)
        best = next(r for r in experiment.results if r.config.name == test.treatment)
        base = next(r for r in experiment.results if r.config.name == test.control)
        after, before = (
            best.evaluation.per_query_metric(PRIMARY_METRIC),
            base.evaluation.per_query_metric(PRIMARY_METRIC),
        )
        deltas = sorted((after[q] - before[q] for q in before), reverse=True)
        fig, ax = plt.subplots(figsize=(7, 4))
        colours = ["tab:green" if d > 0 else "tab:red" if d < 0 else "tab:gray" for d in deltas]
        ax.bar(range(len(deltas)), deltas, color=colours, width=1.0)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_xlabel("query (sorted by change)")
        ax.set_ylabel(f"Δ {PRIMARY_METRIC}")
        ax.set_title(
            f"{test.treatment} vs {test.control}: {test.wins} wins, {test.losses} losses, {test.ties} ties"
        )
        fig.tight_layout()
        paths.append(folder / "winloss.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths


def write_report(experiment: ExperimentResult, folder: str | Path) -> list[Path]:
    """Write results.json, summary.md and the PNG plots into ``folder``; returns the files written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / "results.json"
    json_path.write_text(json.dumps(to_json(experiment), indent=1) + "\n", encoding="utf-8")
    md_path = folder / "summary.md"
    md_path.write_text(markdown(experiment), encoding="utf-8")
    return [json_path, md_path, *plot(experiment, folder)]
