"""Ingest of every supported format, and how bad input is reported instead of crashing the run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from winnow.records import AuthorityRules
from winnow.retrieve.ingest import IngestError, IngestReport, iter_documents, load_beir_corpus


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF whose text layer holds ``text`` (Helvetica), written by hand with a valid xref."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "notes.txt").write_text("Plain text about TCP handshakes.\n", encoding="utf-8")
    (tmp_path / "guide.md").write_text(
        "---\ntitle: The Guide\nupdated_at: 2024-03-02\nteam: infra\n---\n\n# Ignored heading\n\nBody text.\n"
    )
    (tmp_path / "page.html").write_text(
        "<html><head><title>Page Title</title><script>var x = 'no';</script></head>"
        "<body><h1>Head</h1><p>Visible paragraph.</p><style>p{}</style></body></html>"
    )
    (tmp_path / "paper.pdf").write_bytes(minimal_pdf("Hello from the PDF text layer"))
    (tmp_path / "records.jsonl").write_text(
        json.dumps(
            {"id": "r1", "text": "first record", "title": "R1", "lang": "en", "updated_at": "2023-01-05"}
        )
        + "\n"
        + "{not json\n"
        + json.dumps({"id": "r3", "title": "no text"})
        + "\n"
        + json.dumps({"text": "record without id", "metadata": {"k": 1}})
        + "\n"
    )
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "binary.txt").write_bytes(b"\x00\x01\x02binary")
    (sub / "latin1.md").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (sub / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not a pdf at all")
    (sub / "image.png").write_bytes(b"\x89PNG")
    (sub / "empty.txt").write_text("   \n")
    return tmp_path


def test_every_format_is_read_and_bad_files_are_skipped_with_reasons(folder: Path) -> None:
    report = IngestReport()
    docs = {d.id: d for d in iter_documents([folder], report)}
    assert set(docs) == {"notes.txt", "guide.md", "page.html", "paper.pdf", "r1", "records.jsonl#4"}
    assert docs["notes.txt"].text == "Plain text about TCP handshakes."
    assert docs["notes.txt"].title == "notes"
    guide = docs["guide.md"]
    assert (guide.title, guide.metadata, guide.updated_at) == (
        "The Guide",
        {"team": "infra"},
        datetime(2024, 3, 2, tzinfo=UTC),
    )
    assert guide.text.startswith("# Ignored heading")
    assert docs["page.html"].title == "Page Title"
    assert "Visible paragraph." in docs["page.html"].text and "var x" not in docs["page.html"].text
    assert "Hello from the PDF text layer" in docs["paper.pdf"].text
    assert docs["r1"].metadata == {"lang": "en"} and docs["r1"].title == "R1"
    assert docs["r1"].updated_at == datetime(2023, 1, 5, tzinfo=UTC)
    assert docs["records.jsonl#4"].metadata == {"k": 1}
    assert docs["notes.txt"].source == str((folder / "notes.txt").resolve())
    assert docs["notes.txt"].updated_at is not None  # file modification time

    reasons = {Path(where).name: why for where, why in report.skipped}
    assert "binary" in reasons["binary.txt"]
    assert "UTF-8" in reasons["latin1.md"]
    assert "PDF" in reasons["broken.pdf"]
    assert "unsupported" in reasons["image.png"]
    assert "no text" in reasons["empty.txt"]
    assert "JSON" in reasons["records.jsonl:2"] or "Expecting" in reasons["records.jsonl:2"]
    assert "text" in reasons["records.jsonl:3"]
    assert report.documents == 6


def test_missing_path_and_empty_folder_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"does not exist: .*nope"):
        list(iter_documents([tmp_path / "nope"]))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert list(iter_documents([empty])) == []


def test_authority_rules_first_match_wins(folder: Path) -> None:
    rules = AuthorityRules({"*/guide.md": 0.9, "*.md": 0.1, "*.pdf": 0.7}, default=0.4)
    docs = {d.id: d.authority for d in iter_documents([folder], authority=rules)}
    assert docs["guide.md"] == 0.9 and docs["paper.pdf"] == 0.7 and docs["notes.txt"] == 0.4
    with pytest.raises(ValueError, match=r"must be a number in \[0, 1\]"):
        AuthorityRules({"*": 2.0})


def test_bad_date_in_front_matter_skips_that_file_only(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("---\nupdated_at: last tuesday\n---\nbody\n")
    (tmp_path / "b.md").write_text("fine\n")
    report = IngestReport()
    assert [d.id for d in iter_documents([tmp_path], report)] == ["b.md"]
    assert "last tuesday" in report.skipped[0][1]


def test_beir_corpus_keeps_title_separate(shared_data: Path) -> None:
    docs = list(load_beir_corpus(shared_data / "beir" / "scifact"))
    assert len(docs) == 5183
    first = docs[0]
    assert first.id == "4983" and first.title.startswith("Microstructural development")
    assert not first.text.startswith(first.title)


def test_beir_folder_given_to_iter_documents_reads_only_the_corpus(shared_data: Path) -> None:
    report = IngestReport()
    ids = [
        d.id
        for d, _ in zip(iter_documents([shared_data / "beir" / "scifact"], report), range(3), strict=False)
    ]
    assert ids == ["4983", "5836", "7912"]
