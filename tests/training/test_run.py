"""A real (tiny) training run: the loss falls, the dev metric is measured, and an interrupted run resumes
to exactly the weights of an uninterrupted one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from winnow.cli import app
from winnow.training import RecipeError, TrainConfig, train
from winnow.training.data import read_jsonl
from winnow.training.losses import listwise_softmax
from winnow.training.trainer import Trainer, load_cross_encoder

QUESTIONS = [
    (
        "what colour is the sky",
        "The sky is blue on a clear day.",
        ["Bananas are rich in potassium.", "The train leaves at noon."],
    ),
    (
        "how many legs does a spider have",
        "A spider has eight legs.",
        ["Paris is the capital of France.", "Water boils at 100 degrees."],
    ),
    (
        "who wrote hamlet",
        "Hamlet was written by William Shakespeare.",
        ["Cats sleep most of the day.", "Copper conducts electricity."],
    ),
    (
        "what do bees make",
        "Bees make honey from nectar.",
        ["The moon orbits the earth.", "Chess is played on a board."],
    ),
]


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first two layers of all-MiniLM-L6-v2: a real encoder, small enough to train in seconds."""
    from transformers import AutoModel, AutoTokenizer

    from winnow.models import resolve_model

    source = resolve_model("all-minilm-l6")
    target = tmp_path_factory.mktemp("minilm-2-layers")
    AutoModel.from_pretrained(source, num_hidden_layers=2).save_pretrained(target)
    AutoTokenizer.from_pretrained(source).save_pretrained(target)
    return target


@pytest.fixture()
def grouped_file(tmp_path: Path) -> Path:
    path = tmp_path / "train.jsonl"
    rows = [
        {"qid": str(i), "query": q, "positives": [p], "negatives": n} for i, (q, p, n) in enumerate(QUESTIONS)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def config(encoder: Path, data: Path, output: Path, **settings) -> TrainConfig:
    values = dict(
        base=str(encoder),
        architecture="classifier",
        data=[{"path": str(data)}],
        output=str(output),
        negatives=2,
        batch_size=2,
        max_length=32,
        learning_rate=1e-3,
        warmup_ratio=0.0,
        epochs=6,
        dtype="fp32",
        threads=2,
        checkpoint_every=1,
        save_dtype="fp32",
    )
    values.update(settings)
    return TrainConfig(**values)


def listwise_loss(model_dir: Path, data: Path) -> float:
    return listwise_loss_of(load_cross_encoder(str(model_dir)), data)


def listwise_loss_of(loaded: tuple, data: Path) -> float:
    model, tokenizer = loaded
    model.eval()
    groups, _ = read_jsonl(data)
    with torch.no_grad():
        rows = [[g.query, g.positives[0], *g.negatives] for g in groups]
        encoded = tokenizer(
            [r[0] for r in rows for _ in r[1:]],
            [p for r in rows for p in r[1:]],
            padding=True,
            return_tensors="pt",
        )
        scores = model(**encoded).logits.view(len(rows), -1)
    return listwise_softmax(scores).item()


@pytest.mark.slow
def test_training_lowers_the_loss_and_ranks_the_answers(
    tiny_encoder: Path, grouped_file: Path, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    before = listwise_loss_of(load_cross_encoder(str(tiny_encoder), "classifier"), grouped_file)
    result = train(
        config(
            tiny_encoder,
            grouped_file,
            tmp_path / "run",
            dev=[{"path": str(grouped_file)}],
            eval_every=12,
            checkpoint_every=100,
        ),
        progress=False,
    )
    assert result.finished and result.steps == 12
    after = listwise_loss(result.model_dir, grouped_file)
    assert after < before * 0.5
    assert result.dev is not None and result.dev["ndcg@10"] == pytest.approx(1.0)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 12 and summary["best_step"] == 12
    assert (result.model_dir / "model.safetensors").is_file()


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_weights(
    tiny_encoder: Path, grouped_file: Path, tmp_path: Path
) -> None:
    settings = {"epochs": 2, "checkpoint_every": 100}
    whole = train(config(tiny_encoder, grouped_file, tmp_path / "whole", **settings), progress=False)
    split = config(tiny_encoder, grouped_file, tmp_path / "split", **settings)
    first = Trainer(split).run(progress=False, stop_after=2)
    assert not first.finished and first.steps == 2
    assert (tmp_path / "split" / "checkpoint" / "trainer_state.pt").is_file()
    rest = train(split, progress=False)
    assert rest.finished and rest.steps == whole.steps == 4
    a = load_file(tmp_path / "whole" / "checkpoint" / "model.safetensors")
    b = load_file(tmp_path / "split" / "checkpoint" / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("architecture", "saved_as"),
    [("classifier", "BertForSequenceClassification"), ("gated", "GatedBertForSequenceClassification")],
)
def test_saved_fp16_model_loads_as_a_cross_encoder(
    tiny_encoder: Path, grouped_file: Path, tmp_path: Path, architecture: str, saved_as: str
) -> None:
    from transformers import AutoConfig

    from winnow import Reranker

    result = train(
        config(
            tiny_encoder,
            grouped_file,
            tmp_path / "run",
            architecture=architecture,
            epochs=1,
            save_dtype="fp16",
            checkpoint_every=100,
        ),
        progress=False,
    )
    weights = load_file(result.model_dir / "model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.float16}
    loaded = AutoConfig.from_pretrained(result.model_dir)
    assert loaded.num_labels == 1 and loaded.architectures == [saved_as]
    ranking = Reranker(str(result.model_dir), cache=0).rerank(QUESTIONS[0][0], [QUESTIONS[0][1]])
    assert len(ranking) == 1


@pytest.mark.slow
def test_gated_training_opens_the_gates_and_lowers_the_loss(
    tiny_encoder: Path, grouped_file: Path, tmp_path: Path
) -> None:
    before = listwise_loss_of(load_cross_encoder(str(tiny_encoder), "gated"), grouped_file)
    result = train(
        config(tiny_encoder, grouped_file, tmp_path / "run", architecture="gated", checkpoint_every=100),
        progress=False,
    )
    model, _ = load_cross_encoder(str(result.model_dir))
    gates = torch.cat([layer.attention.self.cross_gate for layer in model.bert.encoder.layer])
    assert gates.max() > 0
    assert listwise_loss(result.model_dir, grouped_file) < before


def test_unloadable_base_raises_the_model_loader_error(grouped_file: Path, tmp_path: Path) -> None:
    from winnow.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="no-such-model"):
        train(config(Path("no-such-model"), grouped_file, tmp_path / "run"), progress=False)


def test_recipe_errors_name_the_setting(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("data: [{path: x.jsonl}]\nlerning_rate: 0.1\n")
    with pytest.raises(RecipeError, match=r"unknown setting\(s\) lerning_rate"):
        TrainConfig.from_yaml(recipe)
    with pytest.raises(RecipeError, match="distils from a teacher"):
        TrainConfig(data=[{"path": "x.jsonl"}], loss="margin_mse")


def test_cli_reports_malformed_data_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "passage": "p", "label": 1}\n{"query": "q"\n')
    result = CliRunner().invoke(app, ["train", "--data", str(bad), "--output", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert f"{bad}:2: not valid JSON" in " ".join(result.output.split())


@pytest.mark.slow
def test_interpolated_model_lies_halfway_between_start_and_tuned(
    tiny_encoder: Path, grouped_file: Path, tmp_path: Path
) -> None:
    settings = dict(architecture="gated", checkpoint_every=100, epochs=2)
    tuned = train(config(tiny_encoder, grouped_file, tmp_path / "tuned", **settings), progress=False)
    merged = train(
        config(tiny_encoder, grouped_file, tmp_path / "merged", interpolation=0.5, **settings), progress=False
    )
    start, _ = load_cross_encoder(str(tiny_encoder), "gated")
    start_weights = start.state_dict()
    a = load_file(tuned.model_dir / "model.safetensors")
    b = load_file(merged.model_dir / "model.safetensors")
    gate = "bert.encoder.layer.0.attention.self.cross_gate"
    assert a[gate].abs().max() > 0
    for name in (gate, "bert.encoder.layer.1.output.dense.weight", "classifier.weight"):
        torch.testing.assert_close(b[name], (start_weights[name] + a[name]) / 2, rtol=0, atol=1e-6)


def test_interpolate_weights_is_a_weighted_average() -> None:
    from winnow.training.trainer import interpolate_weights

    start, tuned = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    expected = 0.25 * start.weight.detach() + 0.75 * tuned.weight.detach()
    interpolate_weights(start, tuned, 0.75)
    torch.testing.assert_close(tuned.weight.detach(), expected)


@pytest.mark.parametrize(
    ("setting", "usable", "refusal"),
    [
        ("interpolation", 0.5, "start that already scores pairs"),
        ("shut_gates_below", 0.05, "needs a gated model"),
    ],
)
def test_settings_for_a_gated_start_are_refused_for_a_fresh_classifier_or_out_of_range(
    tiny_encoder: Path, grouped_file: Path, tmp_path: Path, setting: str, usable: float, refusal: str
) -> None:
    with pytest.raises(ValueError, match=refusal):
        train(config(tiny_encoder, grouped_file, tmp_path / "run", **{setting: usable}), progress=False)
    with pytest.raises(RecipeError, match=setting):
        config(tiny_encoder, grouped_file, tmp_path / "run", **{setting: 0.0})


def test_a_student_keeps_only_the_first_layers(
    tiny_encoder: Path, grouped_file: Path, tmp_path: Path
) -> None:
    model, _ = load_cross_encoder(str(tiny_encoder), "gated", layers=1)
    assert len(model.bert.encoder.layer) == 1 and model.config.num_hidden_layers == 1
    with pytest.raises(ValueError, match="between 1 and the model's 2 layers"):
        load_cross_encoder(str(tiny_encoder), "gated", layers=3)
    with pytest.raises(RecipeError, match="layers"):
        config(tiny_encoder, grouped_file, tmp_path / "run", layers=0)


def kl_to_teacher(student: tuple, teacher: tuple, data: Path) -> float:
    from winnow.training.losses import kl_distillation

    groups, _ = read_jsonl(data)
    rows = [[g.query, g.positives[0], *g.negatives] for g in groups]

    def scores(loaded: tuple) -> torch.Tensor:
        model, tokenizer = loaded
        model.eval()
        encoded = tokenizer(
            [r[0] for r in rows for _ in r[1:]],
            [p for r in rows for p in r[1:]],
            padding=True,
            return_tensors="pt",
        )
        with torch.no_grad():
            return model(**encoded).logits.float().view(len(rows), -1)

    return kl_distillation(scores(student), scores(teacher)).item()


@pytest.mark.slow
def test_distilled_student_has_one_layer_and_follows_its_teacher(grouped_file: Path, tmp_path: Path) -> None:
    from transformers import AutoConfig

    teacher = load_cross_encoder("winnow-minilm-l6")
    before = kl_to_teacher(load_cross_encoder("winnow-minilm-l6", layers=1), teacher, grouped_file)
    settings = dict(layers=1, teacher="winnow-minilm-l6", loss="kl", checkpoint_every=100, learning_rate=3e-4)
    result = train(
        config(Path("winnow-minilm-l6"), grouped_file, tmp_path / "student", **settings), progress=False
    )
    assert AutoConfig.from_pretrained(result.model_dir).num_hidden_layers == 1
    after = kl_to_teacher(load_cross_encoder(str(result.model_dir)), teacher, grouped_file)
    assert after < before * 0.5


@pytest.mark.slow
def test_lexical_term_gets_its_idf_from_the_training_passages_and_keeps_it(
    tiny_encoder: Path, grouped_file: Path, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    from winnow.models.gated_cross_encoder import set_lexical_idf
    from winnow.training.trainer import training_passages

    settings = dict(architecture="gated", lexical_weight=0.3, checkpoint_every=100, interpolation=0.5)
    result = train(config(tiny_encoder, grouped_file, tmp_path / "run", **settings), progress=False)
    model, _ = load_cross_encoder(str(result.model_dir))
    reference, tokenizer = load_cross_encoder(str(tiny_encoder), "gated", lexical_weight=0.3)
    groups, _ = read_jsonl(grouped_file)
    assert set_lexical_idf(reference, tokenizer, training_passages(groups)) == 12
    # Averaging with the start (interpolation 0.5) leaves the table as counted: the start has the same one.
    torch.testing.assert_close(model.lexical_idf, reference.lexical_idf)
    assert model.config.lexical_avgdl == pytest.approx(reference.config.lexical_avgdl)
    assert model.lexical_idf[AutoTokenizer.from_pretrained(tiny_encoder).cls_token_id] == 0
    assert model.lexical_weight.item() != pytest.approx(0.3)  # trained with the head


def test_lexical_weight_is_refused_for_a_model_it_cannot_be_added_to(tiny_encoder: Path) -> None:
    with pytest.raises(ValueError, match="built as a classifier"):
        load_cross_encoder(str(tiny_encoder), "classifier", lexical_weight=0.1)
    with pytest.raises(ValueError, match="already a cross-encoder"):
        load_cross_encoder("winnow-minilm-l6", lexical_weight=0.1)


@pytest.mark.slow
def test_shut_gates_below_leaves_the_saved_model_with_shut_gates(
    tiny_encoder: Path, grouped_file: Path, tmp_path: Path
) -> None:
    settings = dict(architecture="gated", checkpoint_every=100, epochs=2, shut_gates_below=1.0)
    result = train(
        config(tiny_encoder, grouped_file, tmp_path / "run", dev=[{"path": str(grouped_file)}], **settings),
        progress=False,
    )
    weights = load_file(result.model_dir / "model.safetensors")
    gates = [w for name, w in weights.items() if name.endswith("cross_gate")]
    assert len(gates) == 2 and all((g == 0).all() for g in gates)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["gates_shut"] == 24 and summary["dev_after_shutting_gates"]["ndcg@10"] > 0
