"""Files a flow reads: the formats LangFlow's File component parses, and parsing them safely.

Light at import (the API uses ``check_upload`` and the format table): the parsers
(pypdf, python-docx, BeautifulSoup) are imported only when a file of theirs is parsed,
in a worker.

What each format becomes (LangFlow's File component, standard parser, ``lfx.base.data``):
text, Markdown, CSV, YAML, XML and source files are their decoded text; a PDF is the text
of its pages joined by blank lines (pypdf, as LangFlow); a DOCX is its paragraphs joined
by blank lines (python-docx, as LangFlow); JSON is the document re-serialised compactly
(as LangFlow's orjson round trip, top-level strings NFKD-normalised). One deliberate
difference: HTML becomes its visible text (BeautifulSoup; scripts and styles dropped)
where LangFlow passes the markup through.

Every parse is bounded: the bytes (the upload limit), a PDF's pages, a DOCX's unpacked
size (the declared sizes of its zip parts, checked before anything is decompressed;
Python's zip reader never inflates a part past its declared size), the characters of the
text, and the time (checked between pages and paragraphs, and a hard wait in ``read``).
Any failure is ``FileParseFailed`` naming the file.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import mimetypes
import time
import unicodedata
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.errors import (
    EmptyFile,
    FileParseFailed,
    FileTooLarge,
    UnsupportedFileType,
)
from shared.settings import Settings

# LangFlow's TEXT_FILE_TYPES (what its File component parses without Docling).
TEXT_EXTENSIONS = frozenset(
    {"txt", "md", "mdx", "csv", "yaml", "yml", "xml", "py", "sh", "sql", "js", "ts", "tsx"}
)
SUPPORTED_EXTENSIONS = tuple(sorted(TEXT_EXTENSIONS | {"json", "pdf", "docx", "html", "htm"}))
_PDF_MAGIC = b"%PDF-"
_ZIP_MAGIC = b"PK\x03\x04"
_MAX_ZIP_ENTRIES = 10_000


@dataclass(frozen=True)
class FileLimits:
    """How much parsing one file may take (settings ``max_file_*``, ``file_parse_timeout_s``)."""

    max_bytes: int = 10 * 1024 * 1024
    max_pages: int = 500
    max_chars: int = 2_000_000
    max_unpacked_bytes: int = 50 * 1024 * 1024
    timeout_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> FileLimits:
        return cls(
            max_bytes=settings.max_file_bytes,
            max_pages=settings.max_file_pages,
            max_chars=settings.max_file_chars,
            max_unpacked_bytes=settings.max_file_unpacked_bytes,
            timeout_s=settings.file_parse_timeout_s,
        )


def extension(name: str) -> str:
    """The lower-case extension of a file name, without the dot ('' when none)."""
    base = name.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[-1].lower() if "." in base else ""


def content_type(name: str) -> str:
    """The media type a file is served with, from its extension."""
    guessed, _ = mimetypes.guess_type(name)
    if extension(name) in ("md", "mdx"):
        return "text/markdown"
    return guessed or "application/octet-stream"


def _label(name: str, file_id: str | None) -> str:
    return f"{name!r} ({file_id})" if file_id else repr(name)


def _zip_problem(data: bytes, label: str, limits: FileLimits) -> str | None:
    """Why a DOCX's zip is refused (not a zip, too many parts, unpacks too large), or None."""
    if not data.startswith(_ZIP_MAGIC):
        return f"{label} is not a DOCX (a DOCX is a zip archive; this does not start like one)"
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        return f"{label} is not a readable DOCX ({exc})"
    if len(infos) > _MAX_ZIP_ENTRIES:
        return f"{label} holds {len(infos)} parts; a DOCX may hold {_MAX_ZIP_ENTRIES}"
    unpacked = sum(info.file_size for info in infos)
    if unpacked > limits.max_unpacked_bytes:
        return (
            f"{label} unpacks to {unpacked} bytes; the limit is {limits.max_unpacked_bytes} "
            "(FLOWFLEET_MAX_FILE_UNPACKED_BYTES)"
        )
    return None


def check_upload(name: str, data: bytes, limits: FileLimits) -> None:
    """Refuse an upload that can never be parsed: empty, too large, an unknown extension,
    a PDF or DOCX that is not one, a DOCX that unpacks past the limit (a zip bomb)."""
    ext = extension(name)
    if ext not in SUPPORTED_EXTENSIONS:
        raise UnsupportedFileType(
            f"{name!r}: files ending in {('.' + ext) if ext else '(no extension)'} are not "
            "parsed; name the file with one of: "
            + ", ".join("." + e for e in SUPPORTED_EXTENSIONS),
            supported=list(SUPPORTED_EXTENSIONS),
        )
    if not data:
        raise EmptyFile(f"{name!r} is empty (0 bytes); upload a file with content")
    if len(data) > limits.max_bytes:
        raise FileTooLarge(
            f"{name!r} is over the limit of {limits.max_bytes} bytes (FLOWFLEET_MAX_FILE_BYTES)",
            limit_bytes=limits.max_bytes,
        )
    if ext == "pdf" and _PDF_MAGIC not in data[:1024]:
        raise UnsupportedFileType(f"{name!r} is not a PDF (it has no %PDF- header)")
    if ext == "docx":
        problem = _zip_problem(data, repr(name), limits)
        if problem is not None:
            too_big = "unpacks to" in problem or "parts" in problem
            raise (FileTooLarge if too_big else UnsupportedFileType)(problem)


@dataclass(frozen=True)
class ParsedFile:
    """A file's text (what the Message output carries) and, for CSV, its rows."""

    name: str
    text: str
    rows: list[dict[str, Any]] | None = None  # CSV rows; None for other formats
    data: Any = None  # JSON: the parsed document


class _Deadline:
    def __init__(self, label: str, timeout_s: float) -> None:
        self.label, self.timeout_s = label, timeout_s
        self.at = time.monotonic() + timeout_s

    def check(self) -> None:
        if time.monotonic() > self.at:
            raise FileParseFailed(
                f"parsing {self.label} took longer than {self.timeout_s:g} s "
                "(FLOWFLEET_FILE_PARSE_TIMEOUT_S)"
            )


def _decode(data: bytes, label: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes  # LangFlow detects the encoding too (chardet)

    best = from_bytes(data).best()
    if best is None:
        raise FileParseFailed(f"{label} is not text in any encoding found (is it binary?)")
    return str(best)


def _pdf_text(data: bytes, label: str, limits: FileLimits, deadline: _Deadline) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not reader.decrypt(""):
        raise FileParseFailed(f"{label} is an encrypted PDF; upload it without a password")
    pages = len(reader.pages)
    if pages > limits.max_pages:
        raise FileParseFailed(
            f"{label} has {pages} pages; the limit is {limits.max_pages} (FLOWFLEET_MAX_FILE_PAGES)"
        )
    texts: list[str] = []
    size = 0
    for page in reader.pages:
        deadline.check()
        text = page.extract_text() or ""
        size += len(text) + 2
        _check_chars(size, label, limits)
        texts.append(text)
    return "\n\n".join(texts)


def _docx_text(data: bytes, label: str, limits: FileLimits, deadline: _Deadline) -> str:
    problem = _zip_problem(data, label, limits)
    if problem is not None:
        raise FileParseFailed(problem)
    from docx import Document  # its XML parser resolves no entities

    document = Document(io.BytesIO(data))
    texts: list[str] = []
    size = 0
    for paragraph in document.paragraphs:
        deadline.check()
        size += len(paragraph.text) + 2
        _check_chars(size, label, limits)
        texts.append(paragraph.text)
    return "\n\n".join(texts)


def _html_text(text: str) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    return "\n".join(line for line in lines if line)


def _nfkd(value: Any) -> Any:
    return unicodedata.normalize("NFKD", value) if isinstance(value, str) else value


def _json_value(text: str) -> tuple[str, Any]:
    value = json.loads(text)
    if isinstance(value, dict):
        value = {
            k: unicodedata.normalize("NFKD", v) if isinstance(v, str) else v
            for k, v in value.items()
        }
    elif isinstance(value, list):
        value = [_nfkd(v) for v in value]
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")), value


def _check_chars(size: int, label: str, limits: FileLimits) -> None:
    if size > limits.max_chars:
        raise FileParseFailed(
            f"{label} holds more than {limits.max_chars} characters of text "
            "(FLOWFLEET_MAX_FILE_CHARS)"
        )


def parse_bytes(
    name: str, data: bytes, limits: FileLimits | None = None, *, file_id: str | None = None
) -> ParsedFile:
    """Parse one file's bytes by its extension; raises ``FileParseFailed`` naming the file."""
    limits = limits or FileLimits()
    label = _label(name, file_id)
    ext = extension(name)
    deadline = _Deadline(label, limits.timeout_s)
    try:
        if ext not in SUPPORTED_EXTENSIONS:
            raise FileParseFailed(f"{label}: files ending in .{ext} are not parsed")
        if not data:
            raise FileParseFailed(f"{label} is empty")
        if len(data) > limits.max_bytes:
            raise FileParseFailed(f"{label} is over the limit of {limits.max_bytes} bytes")
        rows: list[dict[str, Any]] | None = None
        value: Any = None
        if ext == "pdf":
            if _PDF_MAGIC not in data[:1024]:
                raise FileParseFailed(f"{label} is not a PDF (it has no %PDF- header)")
            text = _pdf_text(data, label, limits, deadline)
        elif ext == "docx":
            text = _docx_text(data, label, limits, deadline)
        else:
            text = _decode(data, label)
            _check_chars(len(text), label, limits)
            if ext in ("html", "htm"):
                text = _html_text(text)
            elif ext == "json":
                text, value = _json_value(text)
            elif ext == "csv":
                rows = list(csv.DictReader(io.StringIO(text)))
        deadline.check()
        _check_chars(len(text), label, limits)
        return ParsedFile(name=name, text=text, rows=rows, data=value)
    except FileParseFailed:
        raise
    except RecursionError:
        raise FileParseFailed(f"{label} is nested too deeply to parse") from None
    except Exception as exc:  # a parser's own error: the file is broken, not the run
        why = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise FileParseFailed(f"{label} could not be parsed as .{ext}: {why}") from None


# --- reading a run's files ------------------------------------------------------------


@dataclass(frozen=True)
class FileInfo:
    """A stored file's metadata, as a run sees it."""

    id: str
    name: str
    size: int
    sha256: str
    content_type: str


class FileSource(Protocol):
    """The files one run may read: its owner's only (the worker builds it per run)."""

    async def info(self, file_id: str) -> FileInfo:
        """Metadata; raises ``FileUnavailable`` for another owner's or a missing file."""
        ...

    async def content(self, file_id: str) -> bytes:
        """The bytes; raises ``FileUnavailable`` like ``info``."""
        ...


@dataclass
class ParseCache:
    """Parsed files by content hash and extension, bounded by their characters.

    A flow that reads the same document on every run (Document Q&A) parses it once per
    worker process; a new file version has another hash.
    """

    max_chars: int = 20_000_000
    _items: OrderedDict[tuple[str, str], ParsedFile] = field(default_factory=OrderedDict)
    _chars: int = 0

    def get(self, key: tuple[str, str]) -> ParsedFile | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: tuple[str, str], parsed: ParsedFile) -> None:
        if key in self._items or len(parsed.text) > self.max_chars:
            return
        self._items[key] = parsed
        self._chars += len(parsed.text)
        while self._chars > self.max_chars:
            _, old = self._items.popitem(last=False)
            self._chars -= len(old.text)


PARSED = ParseCache()
# Parses under way, by the same key: runs that start together on the same document (a burst
# of Document Q&A runs on a cold worker) wait for one parse instead of each reading the
# bytes and parsing them.
_parsing: dict[tuple[str, str], asyncio.Future[ParsedFile]] = {}


async def read_file(source: FileSource, file_id: str, limits: FileLimits) -> ParsedFile:
    """One file of a run, parsed off the event loop within the time limit (cached by hash)."""
    info = await source.info(file_id)
    key = (info.sha256, extension(info.name))
    cached = PARSED.get(key)
    if cached is None and key in _parsing:
        try:
            cached = await asyncio.shield(_parsing[key])
        except Exception:
            cached = None  # parse it here, so the error names this run's own file
    if cached is not None:
        return ParsedFile(info.name, cached.text, cached.rows, cached.data)
    future: asyncio.Future[ParsedFile] = asyncio.get_running_loop().create_future()
    _parsing[key] = future
    try:
        parsed = await _parse(source, info, file_id, limits)
    except BaseException as exc:
        future.set_exception(exc if isinstance(exc, Exception) else FileParseFailed("cancelled"))
        future.exception()  # retrieved here: a failure nobody waited for is not logged
        raise
    finally:
        _parsing.pop(key, None)
    future.set_result(parsed)
    PARSED.put(key, parsed)
    return parsed


async def _parse(
    source: FileSource, info: FileInfo, file_id: str, limits: FileLimits
) -> ParsedFile:
    data = await source.content(file_id)
    try:
        # A thread: the worker's loop keeps serving other runs while this one parses. The
        # parser also checks the deadline itself, so its thread stops soon after a timeout.
        parsed = await asyncio.wait_for(
            asyncio.to_thread(parse_bytes, info.name, data, limits, file_id=file_id),
            limits.timeout_s + 1,
        )
    except TimeoutError:
        raise FileParseFailed(
            f"parsing {_label(info.name, file_id)} took longer than {limits.timeout_s:g} s "
            "(FLOWFLEET_FILE_PARSE_TIMEOUT_S)"
        ) from None
    return parsed


async def read_files(
    source: FileSource, file_ids: Sequence[str], limits: FileLimits
) -> list[ParsedFile]:
    """Several files of a run, in order."""
    return [await read_file(source, file_id, limits) for file_id in file_ids]


def file_ids(value: Any) -> list[str]:
    """A File node's ``path``: one file id, or a list of them. Raises ValueError otherwise."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v for v in value if v]
    raise ValueError(f"expected a file id or a list of file ids, got {value!r}")
