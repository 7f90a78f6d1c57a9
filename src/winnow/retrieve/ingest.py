"""Turn files on disk into Documents: .txt, .md, .html, .pdf (text layer), .jsonl and BEIR corpora.

A bad file never stops a run: it is recorded in an ``IngestReport`` with the reason and skipped, so a
folder with one corrupt PDF still indexes everything else and the user sees exactly what was left out.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from winnow.errors import WinnowError
from winnow.records import AuthorityRules, Document, parse_datetime
from winnow.retrieve.beir import iter_corpus

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".jsonl")


class IngestError(WinnowError):
    """The input as a whole cannot be ingested (missing path, nothing to index)."""


@dataclass
class IngestReport:
    """What an ingest run read and what it skipped (``skipped`` holds (where, reason) pairs)."""

    files_read: int = 0
    documents: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def skip(self, where: str | Path, reason: str) -> None:
        self.skipped.append((str(where), reason))


def _file_mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)


def _read_text(path: Path) -> str:
    """File text as UTF-8; raises ValueError naming why for binary files and broken encodings."""
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise ValueError("binary file (contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not valid UTF-8 (bad byte at offset {exc.start})") from exc


def _split_front_matter(text: str) -> tuple[dict[str, str], str]:
    """``---``-delimited ``key: value`` lines at the top of a .md or .txt file, and the rest of the text."""
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---", 4)
    if end == -1:
        return {}, text
    fields: dict[str, str] = {}
    for line in text[4:end].splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            fields[key.strip()] = value.strip().strip("\"'")
    body_start = text.find("\n", end + 4)
    return fields, "" if body_start == -1 else text[body_start + 1 :]


def _markdown(path: Path) -> tuple[str, str, dict[str, str]]:
    fields, body = _split_front_matter(_read_text(path))
    title = fields.pop("title", "")
    if not title:
        for line in body.splitlines():
            if line.startswith("# "):
                title = line[2:].strip()
                break
    return title, body.strip(), fields


def _plain_text(path: Path) -> tuple[str, str, dict[str, str]]:
    fields, body = _split_front_matter(_read_text(path))
    return fields.pop("title", ""), body.strip(), fields


def _html(path: Path) -> tuple[str, str, dict[str, str]]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_read_text(path), "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    title = soup.title.get_text(strip=True) if soup.title else ""
    if not title and soup.h1:
        title = soup.h1.get_text(strip=True)
    if soup.title:
        soup.title.decompose()
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    return title, "\n".join(line for line in lines if line), {}


def _pdf(path: Path) -> tuple[str, str, dict[str, str]]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = (reader.metadata or {}).get("/Title") or ""
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"unreadable PDF ({exc})") from exc
    return str(meta_title).strip(), "\n\n".join(p.strip() for p in pages if p.strip()), {}


READERS = {
    ".txt": _plain_text,
    ".md": _markdown,
    ".markdown": _markdown,
    ".html": _html,
    ".htm": _html,
    ".pdf": _pdf,
}


def _jsonl_documents(
    path: Path, id_prefix: str, rules: AuthorityRules, report: IngestReport
) -> Iterator[Document]:
    """One Document per line; a bad line is reported (file:line: reason) and the rest still load."""
    mtime = _file_mtime(path)
    with path.open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            where = f"{path}:{lineno}"
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
                if not isinstance(record, dict):
                    raise ValueError("line is not a JSON object")
                text = record.get("text")
                if not isinstance(text, str):
                    raise ValueError("field 'text' is missing or not a string")
                raw_id = record.get("id", record.get("_id"))
                doc_id = str(raw_id) if raw_id not in (None, "") else f"{id_prefix}#{lineno}"
                metadata = dict(record.get("metadata") or {})
                extra = {k: v for k, v in record.items() if k not in _JSONL_FIELDS}
                metadata.update(extra)
                source = str(record.get("source") or record.get("url") or path)
                updated = parse_datetime(record.get("updated_at"), where) or mtime
                yield Document(
                    id=doc_id,
                    text=text,
                    title=str(record.get("title") or ""),
                    source=source,
                    updated_at=updated,
                    authority=float(record["authority"]) if "authority" in record else rules.weight(source),
                    metadata=metadata,
                )
            except (UnicodeDecodeError, json.JSONDecodeError, ValueError, TypeError) as exc:
                report.skip(where, str(exc))


_JSONL_FIELDS = {"id", "_id", "text", "title", "metadata", "source", "url", "updated_at", "authority"}


def load_beir_corpus(folder: str | os.PathLike[str]) -> Iterator[Document]:
    """Documents of a BEIR corpus (``folder/corpus.jsonl`` or the file itself): title kept, text = abstract.

    Raises ValueError naming the file and line on a malformed record: a benchmark corpus must be whole.
    """
    path = Path(folder)
    corpus = path / "corpus.jsonl" if path.is_dir() else path
    if not corpus.is_file():
        raise IngestError(f"no BEIR corpus at {corpus} (expected a corpus.jsonl)")
    return iter_corpus(corpus)


def _is_beir_folder(folder: Path) -> bool:
    return (folder / "corpus.jsonl").is_file() and (folder / "qrels").is_dir()


def expand_paths(
    paths: Iterable[str | os.PathLike[str]], report: IngestReport
) -> Iterator[tuple[Path, Path]]:
    """(file, root) pairs for every supported file under the given paths, in a stable order; files of
    other types go to ``report.skipped``. Raises IngestError for a path that does not exist."""
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise IngestError(f"path does not exist: {path}")
        if path.is_file():
            yield path, path.parent
            continue
        if not os.access(path, os.R_OK | os.X_OK):
            raise IngestError(f"cannot read folder: {path} (permission denied)")
        if _is_beir_folder(path):
            yield path / "corpus.jsonl", path
            continue
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            if any(part.startswith(".") for part in file.relative_to(path).parts):
                continue
            if file.suffix.lower() in SUPPORTED_SUFFIXES:
                yield file, path
            else:
                report.skip(file, f"unsupported file type {file.suffix or '(none)'}")


def count_documents(paths: Iterable[str | os.PathLike[str]]) -> int:
    """How many documents ``iter_documents`` yields at most (a file each, a .jsonl file one per line).

    Cheap (no file is parsed), so a progress bar can show a total and an ETA from the start.
    """
    total = 0
    for file, _ in expand_paths(paths, IngestReport()):
        if file.suffix.lower() == ".jsonl":
            with file.open("rb") as handle:
                total += sum(1 for line in handle if line.strip())
        else:
            total += 1
    return total


def iter_documents(
    paths: Iterable[str | os.PathLike[str]],
    report: IngestReport | None = None,
    authority: AuthorityRules | None = None,
) -> Iterator[Document]:
    """Documents from files and folders; unreadable files go to ``report.skipped`` instead of raising.

    A file's document id is its path relative to the folder that was given (or its name when a file
    was given), so re-indexing the same folder updates documents in place instead of duplicating them.
    """
    report = report if report is not None else IngestReport()
    rules = authority or AuthorityRules()
    for file, root in expand_paths(paths, report):
        yield from read_file(file, root, report, rules)


def read_file(file: Path, root: Path, report: IngestReport, rules: AuthorityRules) -> Iterator[Document]:
    """The documents of one file from ``expand_paths`` (ids relative to ``root``); a file that cannot be
    read goes to ``report.skipped``. On its own so that workers elsewhere (``winnow index --ray``) read
    files exactly as ``iter_documents`` does."""
    rel = file.relative_to(root).as_posix()
    try:
        if file.suffix.lower() == ".jsonl":
            report.files_read += 1
            for document in _jsonl_documents(file, rel, rules, report):
                report.documents += 1
                yield document
            return
        title, text, fields = READERS[file.suffix.lower()](file)
    except (OSError, ValueError) as exc:
        report.skip(file, str(exc))
        return
    report.files_read += 1
    if not text.strip():
        report.skip(file, "no text (empty file, or a PDF without a text layer)")
        return
    where = str(file)
    try:
        updated = parse_datetime(fields.pop("updated_at", None) or fields.pop("date", None), where)
    except ValueError as exc:
        report.skip(file, str(exc))
        return
    source = str(file.resolve())
    report.documents += 1
    yield Document(
        id=rel,
        text=text,
        title=title or file.stem.replace("_", " ").replace("-", " "),
        source=source,
        updated_at=updated or _file_mtime(file),
        authority=rules.weight(source),
        metadata=fields,
    )
