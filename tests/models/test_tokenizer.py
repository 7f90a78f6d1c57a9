"""Winnow's tokenizer (``tokenizers`` alone) gives exactly the token ids transformers gives, on real texts.

The reranker and the embedder used transformers' AutoTokenizer before; sentence-transformers still does.
Every call Winnow makes is compared with the transformers call it replaces, on SciFact abstracts and
queries, for the two shipped models and for a RoBERTa-style BPE tokenizer (no segment ids, another
post-processor) built here offline.
"""

from __future__ import annotations

import itertools
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from winnow.models import DEFAULT_EMBEDDING_MODEL, DEFAULT_RERANKER, resolve_model
from winnow.models.tokenizer import Tokenizer
from winnow.retrieve.ingest import load_beir_corpus

EXTRA_TEXTS = [
    "",
    "   ",
    "naïve café — Ünïcödé ½ 漢字 emoji 🙂 tabs\tand\nnewlines",
    "UPPER lower MiXeD can't won't e.g. 3.14 $5 <b>html</b>",
    "word " * 300,
]


@pytest.fixture(scope="module")
def texts(shared_data: Path) -> list[str]:
    docs = itertools.islice(load_beir_corpus(shared_data / "beir" / "scifact"), 60)
    return [f"{d.title} {d.text}" for d in docs] + EXTRA_TEXTS


@pytest.fixture(scope="module")
def queries(shared_data: Path) -> list[str]:
    with (shared_data / "beir" / "scifact" / "queries.jsonl").open(encoding="utf-8") as handle:
        found = [json.loads(line)["text"] for line in itertools.islice(handle, 60)]
    return [*found, "", "naïve café 🙂", "what " * 20]


@pytest.fixture(scope="module")
def roberta_style(tmp_path_factory: pytest.TempPathFactory, texts: list[str]) -> Path:
    """A byte-level BPE tokenizer in RoBERTa's layout, trained here on the test texts."""
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import RobertaProcessing

    folder = tmp_path_factory.mktemp("roberta-style")
    bpe = ByteLevelBPETokenizer()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    bpe.train_from_iterator(texts, vocab_size=600, special_tokens=specials, show_progress=False)
    bpe.post_processor = RobertaProcessing(("</s>", 2), ("<s>", 0))
    bpe.save(str(folder / "tokenizer.json"))
    config = {"tokenizer_class": "RobertaTokenizer", "model_max_length": 128}
    config |= {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
    (folder / "tokenizer_config.json").write_text(json.dumps(config | {"mask_token": "<mask>"}))
    (folder / "config.json").write_text(json.dumps({"model_type": "roberta", "vocab_size": 600}))
    return folder


@pytest.fixture(
    scope="module",
    params=[DEFAULT_RERANKER, DEFAULT_EMBEDDING_MODEL, "roberta-style"],
)
def both(request: pytest.FixtureRequest, roberta_style: Path):
    """(Winnow's tokenizer, transformers' tokenizer) of one model."""
    from transformers import AutoTokenizer

    folder = roberta_style if request.param == "roberta-style" else resolve_model(request.param)
    return Tokenizer.from_model(folder), AutoTokenizer.from_pretrained(folder)


def test_settings_match(both) -> None:
    ours, theirs = both
    assert ours.pad_token_id == theirs.pad_token_id
    assert ours.model_max_length == min(theirs.model_max_length, 10**12)
    assert ours.token_types == ("token_type_ids" in theirs.model_input_names)
    assert ours.num_special_tokens(pair=True) == theirs.num_special_tokens_to_add(pair=True)
    assert ours.num_special_tokens(pair=False) == theirs.num_special_tokens_to_add(pair=False)


@pytest.mark.parametrize("max_length", [16, 128, 512])
def test_single_texts_truncated_match(both, texts: list[str], max_length: int) -> None:
    ours, theirs = both
    expected = theirs(texts, truncation=True, max_length=max_length)
    encoded = ours.encode(texts, max_length)
    assert [e.ids for e in encoded] == expected["input_ids"]
    if ours.token_types:
        assert [e.type_ids for e in encoded] == expected["token_type_ids"]


def test_counts_and_offsets_match(both, texts: list[str]) -> None:
    ours, theirs = both
    expected = theirs(texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    assert [ours.count(text) for text in texts] == [len(ids) for ids in expected["input_ids"]]
    assert ours.offsets(texts) == [[tuple(span) for span in row] for row in expected["offset_mapping"]]


@pytest.mark.parametrize(("max_length", "stride"), [(48, 0), (96, 16), (256, 64)])
def test_pairs_with_overflowing_windows_match(
    both, queries: list[str], texts: list[str], max_length: int, stride: int
) -> None:
    ours, theirs = both
    pairs = [(q, t) for q, t in zip(queries, texts, strict=False) if ours.count(q) < max_length // 2]
    query_list, text_list = [p[0] for p in pairs], [p[1] for p in pairs]
    expected = theirs(
        query_list,
        text_list,
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    windows = ours.encode_pairs(query_list, text_list, max_length, stride=stride)
    flat = [(owner, window) for owner, pair in enumerate(windows) for window in pair]
    assert [owner for owner, _ in flat] == list(expected["overflow_to_sample_mapping"])
    assert [w.ids for _, w in flat] == expected["input_ids"]
    assert [[tuple(s) for s in w.offsets] for _, w in flat] == [
        [tuple(s) for s in row] for row in expected["offset_mapping"]
    ]
    if ours.token_types:
        assert [w.type_ids for _, w in flat] == expected["token_type_ids"]
    assert any(len(pair) > 1 for pair in windows)  # the texts are long enough to overflow


def test_left_truncation_matches(texts: list[str]) -> None:
    from transformers import AutoTokenizer

    folder = resolve_model(DEFAULT_RERANKER)
    loaded = Tokenizer.from_model(folder)
    ours = Tokenizer(
        loaded.backend_tokenizer,
        pad_token_id=loaded.pad_token_id,
        model_max_length=loaded.model_max_length,
        truncation_side="left",
    )
    theirs = AutoTokenizer.from_pretrained(folder, truncation_side="left")
    expected = theirs(["a query"] * len(texts), texts, truncation="only_second", max_length=64)
    assert [w[0].ids for w in ours.encode_pairs(["a query"] * len(texts), texts, 64)] == expected["input_ids"]


def test_a_second_process_loads_it_without_transformers() -> None:
    folder = resolve_model(DEFAULT_RERANKER)
    Tokenizer.from_model(folder)  # converted and cached (if not already)
    code = (
        "import sys\n"
        "from winnow.models.tokenizer import Tokenizer\n"
        f"t = Tokenizer.from_model({str(folder)!r})\n"
        "assert t.count('sqlite write locks') > 2\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_it_pickles_for_ray(both, texts: list[str]) -> None:
    ours, _ = both
    copy = pickle.loads(pickle.dumps(ours))
    assert [e.ids for e in copy.encode(texts, 64)] == [e.ids for e in ours.encode(texts, 64)]
    assert (copy.pad_token_id, copy.token_types) == (ours.pad_token_id, ours.token_types)


def test_a_damaged_cache_file_is_converted_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from winnow.models import tokenizer as module

    monkeypatch.setenv("WINNOW_CACHE_DIR", str(tmp_path))
    folder = resolve_model(DEFAULT_RERANKER)
    expected = Tokenizer.from_model(folder).encode(["damaged cache"], 32)[0].ids
    (cached,) = tmp_path.glob("onnx/*/tokenizer-*.json")
    cached.write_text('{"tokenizer": "not json')
    module._load.cache_clear()
    assert Tokenizer.from_model(folder).encode(["damaged cache"], 32)[0].ids == expected
    assert json.loads(cached.read_text())["pad_token_id"] == 0
