"""Fine-tune a cross-encoder: listwise/pointwise/distillation losses, dev early stopping, checkpoints, resume.

What comes out is a Hugging Face model folder with one logit: Winnow's gated cross-encoder (loads in
transformers once ``winnow.models.gated_cross_encoder`` is imported) or a plain ``*ForSequenceClassification``
(loads anywhere); both export to ONNX and load in Winnow's ``Reranker``.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

from winnow.models import pick_device, pick_dtype, resolve_model
from winnow.models.architecture import is_cross_encoder
from winnow.models.gated_cross_encoder import (
    GatedBertForSequenceClassification,
    from_bi_encoder,
    set_lexical_idf,
    shut_small_gates,
)
from winnow.models.hardware import torch_dtype
from winnow.training.config import TrainConfig
from winnow.training.data import Group, LoadReport, read_beir, read_jsonl, read_pubmedqa
from winnow.training.dev import evaluate_groups
from winnow.training.losses import DISTILLATION_LOSSES, LOSSES
from winnow.training.negatives import beir_groups

STATE_FILE = "trainer_state.pt"


@dataclass
class TrainResult:
    """Where the trained model is and how the run went."""

    model_dir: Path
    steps: int
    best_step: int | None
    dev: dict[str, float] | None
    seconds: float
    stopped_early: bool
    finished: bool = True


def load_sources(sources: list[dict], require_negatives: bool) -> tuple[list[Group], list[LoadReport]]:
    """Read every configured source into groups, with one report per source."""
    groups, reports = [], []
    for source in sources:
        skip, limit = source.get("skip_queries", 0), source.get("max_queries")
        chosen = slice(skip, None if limit is None else skip + limit)
        if "path" in source:
            found, report = read_jsonl(source["path"], require_negatives=require_negatives)
            found = found[chosen]
            report.groups = len(found)
        else:
            kind, read = ("beir", read_beir) if "beir" in source else ("pubmedqa", read_pubmedqa)
            split_name = source.get("split", "train")
            found, report = beir_groups(
                read(source[kind], split_name),
                f"{source[kind]} ({split_name})",
                depth=source.get("depth", 30),
                queries=chosen,
                mining=source.get("mining", "bm25"),
                name=Path(source[kind]).name,  # the index folder also carries a digest of the corpus
            )
        groups.extend(found)
        reports.append(report)
    return groups, reports


def load_cross_encoder(
    base: str, architecture: str = "gated", layers: int | None = None, lexical_weight: float | None = None
):
    """A one-logit cross-encoder from ``base`` and its tokenizer.

    A cross-encoder continues as it is; a plain encoder (a bi-encoder such as all-MiniLM-L6-v2) becomes
    a ``GatedBertForSequenceClassification`` that starts as that bi-encoder, or, with
    ``architecture="classifier"``, a standard classifier with a fresh head. ``lexical_weight`` gives the
    gated model its lexical-match term with that starting weight (its IDF table still has to be filled:
    ``set_lexical_idf``). ``layers`` keeps only the first N transformer layers (see ``keep_first_layers``).
    """
    path = resolve_model(base)
    tokenizer = AutoTokenizer.from_pretrained(path)
    continues = is_cross_encoder(path)
    builds_gated = architecture == "gated" and not continues
    if lexical_weight is not None and not builds_gated:
        raise ValueError(
            f"lexical_weight adds a term to a gated model built from a plain encoder; {base} is "
            f"{'already a cross-encoder' if continues else 'built as a classifier'}, so it "
            "cannot take one"
        )
    if builds_gated:
        model = from_bi_encoder(
            str(path), lexical_match=lexical_weight is not None, lexical_weight=lexical_weight or 0.0
        )
    else:
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=torch.float32)
    if layers is not None:
        keep_first_layers(model, layers)
    return model, tokenizer


def keep_first_layers(model: torch.nn.Module, layers: int) -> None:
    """Drop every transformer layer after the first ``layers``, in place (a student for a cascade).

    The lower layers of a trained cross-encoder are the best start a shallow student can have: embeddings,
    head and pooler stay, and distillation from the full model teaches the head to read layer N's output.
    """
    stack = model.base_model.encoder.layer
    if not 1 <= layers <= len(stack):
        raise ValueError(f"layers must be between 1 and the model's {len(stack)} layers, not {layers}")
    model.base_model.encoder.layer = stack[:layers]
    model.config.num_hidden_layers = layers


def interpolate_weights(start: torch.nn.Module, tuned: torch.nn.Module, weight: float) -> None:
    """Set ``tuned``'s weights to ``(1 - weight) * start + weight * tuned``, in place (WiSE-FT).

    Averaging a fine-tuned model with its start keeps most of the in-domain gain and much of what the
    start knew about everything else, which a small fine-tuning set otherwise erodes (Wortsman et al.,
    "Robust fine-tuning of zero-shot models", 2022).
    """
    start_weights = start.state_dict()
    with torch.no_grad():
        for name, tensor in tuned.state_dict().items():
            if tensor.is_floating_point():
                tensor.copy_((1.0 - weight) * start_weights[name].to(tensor) + weight * tensor)


def _learns_from_scratch(name: str) -> bool:
    """Parameters that start at a fixed value rather than from pretraining, trained at the head's rate."""
    return name.startswith(("classifier.", "similarity_", "lexical_")) or name.endswith("cross_gate")


def training_passages(groups: list[Group]) -> list[str]:
    """Every distinct passage of the training data: the collection a lexical-match IDF is counted on."""
    return list(dict.fromkeys(p for group in groups for p in (*group.positives, *group.negatives)))


def sample_group(group: Group, negatives: int, rng: random.Random) -> list[str]:
    """One positive then ``negatives`` negatives (repeated when the query has fewer)."""
    positive = rng.choice(group.positives)
    if len(group.negatives) >= negatives:
        chosen = rng.sample(group.negatives, negatives)
    else:
        chosen = [rng.choice(group.negatives) for _ in range(negatives)]
    return [positive, *chosen]


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Runs one training configuration; ``run()`` resumes from ``<output>/checkpoint`` when it exists."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.output = Path(config.output)
        self.device = pick_device(config.device)
        self.dtype = pick_dtype(self.device, config.dtype)
        self.autocast = None if self.dtype == "fp32" else torch_dtype(self.dtype)

    def _batches(self, groups: list[Group], epoch: int) -> list[list[list[str]]]:
        """The epoch's micro-batches, each ``[query, positive, *negatives]`` rows, from the seed alone.

        Rows of similar length share a batch (sorted within windows of 50 batches, then the batches are
        shuffled), because padding short sentences to the length of long abstracts wastes most of a step.
        """
        rng = random.Random(self.config.seed * 1_000 + epoch)
        order = list(range(len(groups)))
        rng.shuffle(order)
        rows = [
            [
                groups[i].query,
                *sample_group(
                    groups[i], self.config.negatives, random.Random(f"{self.config.seed}-{epoch}-{i}")
                ),
            ]
            for i in order
        ]
        size = self.config.batch_size
        window = size * 50
        batches = []
        for start in range(0, len(rows), window):
            chunk = sorted(rows[start : start + window], key=lambda row: max(map(len, row)))
            batches.extend(chunk[k : k + size] for k in range(0, len(chunk), size))
        rng.shuffle(batches)
        return batches

    def _scores(self, model, tokenizer, batch: list[list[str]]) -> torch.Tensor:
        """Logits shaped (queries, 1 + negatives), positive in column 0."""
        queries = [row[0] for row in batch for _ in row[1:]]
        passages = [p for row in batch for p in row[1:]]
        encoded = tokenizer(
            queries,
            passages,
            truncation="longest_first",
            max_length=self.config.max_length,
            padding=True,
            return_tensors="pt",
        ).to(self.device)
        with torch.autocast(
            self.device.split(":")[0], dtype=self.autocast or torch.float32, enabled=self.autocast is not None
        ):
            logits = model(**encoded).logits
        return logits.float().view(len(batch), -1)

    def run(self, progress: bool = True, stop_after: int | None = None) -> TrainResult:
        """Train until the step budget, the epochs or early stopping end it; return the final model.

        ``stop_after`` ends this session after that many steps with a checkpoint (``finished`` is then
        False), so a long run can be split across sessions: run again to continue.
        """
        config = self.config
        started = time.monotonic()
        if config.threads:
            torch.set_num_threads(config.threads)
        _seed_everything(config.seed)
        checkpoint = self._find_checkpoint()
        if config.interpolation < 1 and not (
            config.architecture == "gated" or is_cross_encoder(resolve_model(config.base))
        ):
            raise ValueError(
                "interpolation < 1 averages the result with its start, which needs a start that already "
                "scores pairs: architecture 'gated' or a cross-encoder base, not a fresh classifier head"
            )

        groups, reports = load_sources(config.data, require_negatives=True)
        dev_groups, dev_reports = load_sources(config.dev, require_negatives=True)
        if not groups:
            raise ValueError("no training query has both a positive and a negative; nothing to train on")
        for report in [*reports, *dev_reports]:
            tqdm.write(f"data {report}")
        if checkpoint:
            model, tokenizer = load_cross_encoder(str(checkpoint))
        else:
            model, tokenizer = self._initial_model(groups)
        if config.shut_gates_below is not None and not isinstance(model, GatedBertForSequenceClassification):
            raise ValueError("shut_gates_below needs a gated model: one with cross-attention gates to shut")
        model.to(self.device).train()
        if config.freeze_embeddings:
            model.base_model.embeddings.word_embeddings.weight.requires_grad_(False)
        teacher = teacher_tokenizer = None
        if config.teacher:  # with its own tokenizer: a teacher may come from another model family
            teacher, teacher_tokenizer = load_cross_encoder(config.teacher)
            teacher.to(self.device).eval()

        micro_per_epoch = math.ceil(len(groups) / config.batch_size)
        steps_per_epoch = math.ceil(micro_per_epoch / config.grad_accumulation)
        total = steps_per_epoch * config.epochs
        if config.max_steps:
            total = min(total, config.max_steps)
        params = [p for p in model.parameters() if p.requires_grad]
        head = [p for n, p in model.named_parameters() if p.requires_grad and _learns_from_scratch(n)]
        body = [p for p in params if all(p is not h for h in head)]
        optimizer = torch.optim.AdamW(
            [{"params": body}, {"params": head, "lr": config.head_learning_rate or config.learning_rate}],
            lr=config.learning_rate,
            weight_decay=config.weight_decay,
        )
        scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total), total)
        state = {"step": 0, "best": None, "best_step": None, "bad_evals": 0, "seconds": 0.0, "loss": None}
        if checkpoint:
            saved = torch.load(checkpoint / STATE_FILE, weights_only=False)
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            torch.set_rng_state(saved["torch_rng"])
            state = saved["state"]
            tqdm.write(f"resumed from {checkpoint} at step {state['step']}")
        loss_fn = DISTILLATION_LOSSES.get(config.loss) or LOSSES[config.loss]
        self.output.mkdir(parents=True, exist_ok=True)
        log_path = self.output / "train_log.jsonl"

        bar = tqdm(
            total=total,
            initial=state["step"],
            desc="train",
            unit="step",
            disable=not progress,
            dynamic_ncols=True,
        )
        if dev_groups and state["step"] == 0:
            # The starting point is a candidate too: a run that only makes the dev set worse ships its start.
            metrics = evaluate_groups(model, tokenizer, dev_groups, config.max_length, self.autocast)
            tqdm.write(f"step 0: dev nDCG@10 {metrics['ndcg@10']:.4f}, MRR@10 {metrics['mrr@10']:.4f}")
            with log_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"step": 0, **metrics}) + "\n")
            state.update(best=metrics["ndcg@10"], best_step=0)
            self._save_model(model, tokenizer, self.output / "best", config.save_dtype)
        stopped_early = state["bad_evals"] >= config.patience
        paused = False
        session_start = time.monotonic()
        seconds_before = state["seconds"]
        first_step = state["step"]
        while state["step"] < total and not stopped_early:
            epoch, within = divmod(state["step"], steps_per_epoch)
            batches = self._batches(groups, epoch)
            first = within * config.grad_accumulation
            for k in range(first, len(batches), config.grad_accumulation):
                for batch in batches[k : k + config.grad_accumulation]:
                    scores = self._scores(model, tokenizer, batch)
                    if teacher is not None:
                        with torch.no_grad():
                            teacher_scores = self._scores(teacher, teacher_tokenizer, batch)
                        loss = loss_fn(scores, teacher_scores)
                    else:
                        loss = loss_fn(scores)
                    (loss / config.grad_accumulation).backward()
                    value = loss.item()
                    state["loss"] = value if state["loss"] is None else 0.98 * state["loss"] + 0.02 * value
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                state["step"] += 1
                state["seconds"] = seconds_before + time.monotonic() - session_start
                bar.update(1)
                bar.set_postfix(loss=f"{state['loss']:.4f}", epoch=epoch)
                step = state["step"]
                record = None
                if dev_groups and (step % config.eval_every == 0 or step == total):
                    metrics = evaluate_groups(model, tokenizer, dev_groups, config.max_length, self.autocast)
                    record = {"step": step, "loss": state["loss"], **metrics}
                    tqdm.write(
                        f"step {step}: loss {state['loss']:.4f}, dev nDCG@10 {metrics['ndcg@10']:.4f}, "
                        f"MRR@10 {metrics['mrr@10']:.4f}"
                    )
                    if state["best"] is None or metrics["ndcg@10"] > state["best"]:
                        state.update(best=metrics["ndcg@10"], best_step=step, bad_evals=0)
                        self._save_model(model, tokenizer, self.output / "best", config.save_dtype)
                    else:
                        state["bad_evals"] += 1
                        stopped_early = state["bad_evals"] >= config.patience
                if record or step % 10 == 0:
                    with log_path.open("a", encoding="utf-8") as handle:
                        handle.write(
                            json.dumps(
                                record or {"step": step, "loss": state["loss"], "seconds": state["seconds"]}
                            )
                            + "\n"
                        )
                paused = stop_after is not None and step - first_step >= stop_after and step < total
                if step % config.checkpoint_every == 0 or step == total or stopped_early or paused:
                    self._save_checkpoint(model, tokenizer, optimizer, scheduler, state)
                if step >= total or stopped_early or paused:
                    break
            if paused:
                break
        bar.close()
        if paused:
            tqdm.write(f"paused at step {state['step']} of {total}; run again to continue")
            return TrainResult(
                self.output / "checkpoint",
                state["step"],
                state["best_step"],
                None,
                time.monotonic() - started,
                False,
                finished=False,
            )

        final = self.output / "model"
        if state["best_step"] is not None:
            best = self.output / "best"
            model = AutoModelForSequenceClassification.from_pretrained(best, dtype=torch.float32)
        merged_dev = None
        if config.interpolation < 1:
            start, _ = self._initial_model(groups)
            interpolate_weights(start, model, config.interpolation)
            if dev_groups:
                merged_dev = evaluate_groups(model, tokenizer, dev_groups, config.max_length, self.autocast)
                tqdm.write(f"interpolated with the start ({config.interpolation}): dev {merged_dev}")
        gates_shut = shut_dev = None
        if config.shut_gates_below is not None:
            gates_shut = shut_small_gates(model, config.shut_gates_below)
            if dev_groups:
                shut_dev = evaluate_groups(model, tokenizer, dev_groups, config.max_length, self.autocast)
            tqdm.write(f"shut {gates_shut} gates under {config.shut_gates_below}: dev {shut_dev}")
        self._save_model(model, tokenizer, final, config.save_dtype)
        summary = {
            "config": config.to_dict(),
            "data": [str(r) for r in reports],
            "dev_data": [str(r) for r in dev_reports],
            "steps": state["step"],
            "best_step": state["best_step"],
            "dev_ndcg@10": state["best"],
            "interpolated_dev": merged_dev,
            "gates_shut": gates_shut,
            "dev_after_shutting_gates": shut_dev,
            "stopped_early": stopped_early,
            "train_seconds": round(state["seconds"], 1),
            "device": self.device,
            "dtype": self.dtype,
            "threads": torch.get_num_threads(),
        }
        (self.output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        return TrainResult(
            final,
            state["step"],
            state["best_step"],
            {"ndcg@10": state["best"]} if state["best"] is not None else None,
            time.monotonic() - started,
            stopped_early,
        )

    def _initial_model(self, groups: list[Group]):
        """The model before step 0, built the same way each time: the start of training, and the start
        that ``interpolation`` averages the result with (so a lexical IDF table is identical in both)."""
        config = self.config
        model, tokenizer = load_cross_encoder(
            config.base, config.architecture, config.layers, config.lexical_weight
        )
        if config.lexical_weight is not None:
            counted = set_lexical_idf(model, tokenizer, training_passages(groups))
            tqdm.write(f"lexical match: IDF of {counted:,} training passages, weight {config.lexical_weight}")
        return model, tokenizer

    def _find_checkpoint(self) -> Path | None:
        """The last complete checkpoint: ``checkpoint``, or ``checkpoint.old`` if a save was interrupted."""
        for name in ("checkpoint", "checkpoint.old"):
            path = self.output / name
            if (path / STATE_FILE).is_file():
                return path
        return None

    @staticmethod
    def _save_model(model, tokenizer, target: Path, dtype: str) -> None:
        """Save a copy in ``dtype`` (the training model itself stays fp32)."""
        tmp = target.with_name(target.name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        model.save_pretrained(tmp)
        if dtype != "fp32":
            copy = AutoModelForSequenceClassification.from_pretrained(tmp, dtype=torch.float32)
            copy.to(torch_dtype(dtype)).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)

    def _save_checkpoint(self, model, tokenizer, optimizer, scheduler, state) -> None:
        """Write the full training state so an interrupted run resumes where it stopped; never a half file."""
        target = self.output / "checkpoint"
        tmp = self.output / "checkpoint.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        torch.save(
            {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "state": dict(state),
                "config": self.config.to_dict(),
            },
            tmp / STATE_FILE,
        )
        old = self.output / "checkpoint.old"
        if target.exists():
            target.rename(old)
        tmp.rename(target)
        if old.exists():
            shutil.rmtree(old)


def train(config: TrainConfig, progress: bool = True, stop_after: int | None = None) -> TrainResult:
    """Train a cross-encoder as ``config`` says; see ``Trainer.run``."""
    return Trainer(config).run(progress=progress, stop_after=stop_after)
