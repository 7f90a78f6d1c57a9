"""Models from the Hugging Face hub: the real download code (huggingface_hub's snapshot_download under
``winnow.models.hub``) against a loopback server that serves a small cross-encoder in the hub's layout.

The server answers the URLs huggingface_hub asks for: the revision API (``/api/models/{repo}/revision/
{rev}``, with the commit), the file tree (``/api/models/{repo}/tree/{commit}``) and the files
(``/{repo}/resolve/{rev}/{file}``, HEAD and GET, with X-Repo-Commit, ETag and Content-Length). It
records every path asked for, so the tests see what was (not) downloaded.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from loopback import send_json, serve

from winnow import ModelNotFoundError, Reranker
from winnow.models import resolve_model

REPO = "cross-encoder/ms-marco-MiniLM-L-6-v2"  # what the short name minilm-l6 points at
MAIN = "a" * 40
V1 = "b" * 40
QUERY = "how does bm25 saturate term frequency?"
DOCS = ["BM25 saturates term frequency with k1.", "Paris is in France.", "Term weighting in ranking."]


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real BERT cross-encoder, 2 layers of width 32, with all-MiniLM-L6-v2's tokenizer (4 MB)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    source = resolve_model("all-minilm-l6")
    target = tmp_path_factory.mktemp("tiny-cross-encoder")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    config.num_labels = 1
    BertForSequenceClassification(config).save_pretrained(target)
    AutoTokenizer.from_pretrained(source).save_pretrained(target)
    return target


class FakeHub:
    """A loopback hub holding REPO at two revisions: main, and the tag v1 (whose revision.txt differs)."""

    def __init__(self, model_dir: Path) -> None:
        files = {p.name: p.read_bytes() for p in model_dir.iterdir() if p.is_file()}
        # Files a cross-encoder does not need; Winnow must not fetch them.
        files["onnx/model.onnx"] = b"\0" * 1000
        files["pytorch_model.bin"] = b"\0" * 1000
        self.revisions = {"main": MAIN, "v1": V1}
        self.snapshots = {
            MAIN: {**files, "revision.txt": b"main\n"},
            V1: {**files, "revision.txt": b"v1\n"},
        }
        self.paths: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                hub.serve(self, body=False)

            def do_GET(self):
                hub.serve(self, body=True)

        self.server, self.url = serve(Handler)

    @staticmethod
    def blob_id(content: bytes) -> str:
        return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()

    def commit(self, revision: str) -> str | None:
        return revision if revision in self.snapshots else self.revisions.get(revision)

    def serve(self, handler: BaseHTTPRequestHandler, body: bool) -> None:
        path = unquote(urlparse(handler.path).path)
        self.paths.append(path)
        api = re.fullmatch(r"/api/models/(.+?)/(revision|tree)/([^/]+)", path)
        resolve = re.fullmatch(r"/(.+?)/resolve/([^/]+)/(.+)", path)
        repo = (api or resolve).group(1) if (api or resolve) else None
        if repo != REPO:
            return send_json(
                handler, 404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"}
            )
        commit = self.commit(api.group(3) if api else resolve.group(2))
        if commit is None:
            return send_json(handler, 404, {"error": "Invalid rev id"}, {"X-Error-Code": "RevisionNotFound"})
        files = self.snapshots[commit]
        if api and api.group(2) == "revision":
            siblings = [{"rfilename": name} for name in files]
            return send_json(handler, 200, {"id": REPO, "sha": commit, "siblings": siblings})
        if api:
            return send_json(
                handler, 200, [self.tree_entry(name, content) for name, content in files.items()]
            )
        name = resolve.group(3)
        if name not in files:
            return send_json(handler, 404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
        content = files[name]
        etag = self.tree_entry(name, content).get("lfs", {}).get("oid") or self.blob_id(content)
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(content)))
        handler.send_header("ETag", f'"{etag}"')
        handler.send_header("X-Repo-Commit", commit)
        handler.end_headers()
        if body:
            handler.wfile.write(content)

    def tree_entry(self, name: str, content: bytes) -> dict:
        entry = {"type": "file", "path": name, "size": len(content), "oid": self.blob_id(content)}
        if name.endswith((".safetensors", ".bin", ".onnx")):  # large files live in LFS, keyed by sha256
            sha = hashlib.sha256(content).hexdigest()
            entry["lfs"] = {"oid": sha, "size": len(content), "pointerSize": 134}
        return entry

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub(tiny_cross_encoder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The fake hub as HF_ENDPOINT, an empty HF_HOME, and the network allowed."""
    import huggingface_hub.constants

    server = FakeHub(tiny_cross_encoder)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    for variable in ("HF_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    yield server
    server.close()


def test_short_name_downloads_on_first_use_and_ranks_like_the_source(
    hub, tiny_cross_encoder, tmp_path, capfd
):
    reranker = Reranker("minilm-l6", backend="torch", dtype="fp32")
    folder = reranker.model_dir
    assert (
        folder
        == tmp_path / "hf-home" / "hub" / "models--cross-encoder--ms-marco-MiniLM-L-6-v2" / "snapshots" / MAIN
    )
    assert (folder / "model.safetensors").read_bytes() == (
        tiny_cross_encoder / "model.safetensors"
    ).read_bytes()
    downloaded = {p.split("/resolve/")[1] for p in hub.paths if "/resolve/" in p}
    assert f"{MAIN}/model.safetensors" in downloaded and f"{MAIN}/tokenizer.json" in downloaded
    assert not any(name.endswith(("onnx/model.onnx", "pytorch_model.bin")) for name in downloaded)
    assert f"Downloading {REPO} from {hub.url}" in capfd.readouterr().err
    local = Reranker(tiny_cross_encoder, backend="torch", dtype="fp32")
    assert list(reranker.score([(QUERY, d) for d in DOCS])) == pytest.approx(
        list(local.score([(QUERY, d) for d in DOCS])), abs=1e-6
    )


def test_a_downloaded_model_loads_offline_with_no_request(hub, monkeypatch):
    first = resolve_model(REPO)
    before = len(hub.paths)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model("minilm-l6") == first
    assert len(hub.paths) == before


def test_offline_never_calls_the_network_and_says_how_to_get_the_model(hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match=rf"{REPO}.*HF_HUB_OFFLINE is set.*hf download {REPO}"):
        Reranker("minilm-l6")
    assert hub.paths == []
    with pytest.raises(ModelNotFoundError, match="downloading was turned off"):
        resolve_model(REPO, download=False)
    assert hub.paths == []


def test_a_revision_is_honoured(hub):
    tagged = resolve_model(REPO, revision="v1")
    assert tagged.name == V1 and (tagged / "revision.txt").read_text() == "v1\n"
    assert resolve_model(REPO).name == MAIN
    by_commit = resolve_model(REPO, revision=V1)
    assert by_commit == tagged
    with pytest.raises(ModelNotFoundError, match="has no revision 'v9'"):
        resolve_model(REPO, revision="v9")
    with pytest.raises(ValueError, match="a revision is for Hugging Face models"):
        resolve_model("winnow-minilm-l6", revision="v1")


def test_unknown_repositories_and_unreachable_hubs_are_one_line_errors(hub, monkeypatch):
    with pytest.raises(ModelNotFoundError, match=rf"no model 'someone/missing' on {hub.url}"):
        resolve_model("someone/missing")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed}")
    with pytest.raises(ModelNotFoundError, match=r"could not download .*Connect.*hf download"):
        resolve_model(REPO)


def test_winnow_models_lists_every_short_name_and_what_is_here(hub, monkeypatch):
    from typer.testing import CliRunner

    from winnow.cli import app
    from winnow.models import KNOWN_MODELS

    def listed() -> dict[str, dict]:
        result = CliRunner().invoke(app, ["models", "--json"])
        assert result.exit_code == 0, result.output
        return {row["name"]: row for row in map(json.loads, result.stdout.splitlines())}

    rows = listed()
    assert set(rows) == {name for name in KNOWN_MODELS if "/" not in name}
    assert rows["minilm-l6"]["location"] is None and rows["minilm-l6"]["id"] == REPO
    assert rows["minilm-l6"]["dl19_ndcg10"] == 0.743 and "published" in rows["minilm-l6"]["source"]
    assert (
        rows["winnow-minilm-l6"]["dl19_ndcg10"] == 0.649
        and "measured here" in rows["winnow-minilm-l6"]["source"]
    )
    assert rows["winnow-minilm-l6"]["location"]
    assert hub.paths == []  # listing never downloads
    folder = resolve_model("minilm-l6")
    assert listed()["minilm-l6"]["location"] == str(folder)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    table = CliRunner().invoke(app, ["models"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "no (offline)" in table.stdout and "minilm-l12" in table.stdout
