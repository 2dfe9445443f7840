"""Parsing the files a File node reads: each format as LangFlow's File component gives it,
and every way a file can be hostile (not what it says, a zip bomb, too long) refused with
``file_parse_failed`` naming the file."""

from __future__ import annotations

import asyncio
import json

import pytest

from flows.files import (
    FileInfo,
    FileLimits,
    ParseCache,
    check_upload,
    file_ids,
    parse_bytes,
    read_file,
)
from shared.errors import (
    EmptyFile,
    FileParseFailed,
    FileTooLarge,
    FileUnavailable,
    UnsupportedFileType,
)
from tests.support.documents import docx, minimal_pdf, zip_bomb_docx

LIMITS = FileLimits()


@pytest.mark.parametrize("name", ["notes.txt", "README.md", "q.sql", "conf.yaml", "a.xml"])
def test_text_formats_are_their_text(name: str) -> None:
    parsed = parse_bytes(name, "line one\nligne deux é\n".encode())
    assert parsed.text == "line one\nligne deux é\n"


def test_text_in_another_encoding_is_decoded() -> None:
    parsed = parse_bytes("latin.txt", "Grüße aus Köln, très bien".encode("cp1252"))
    assert "Köln" in parsed.text


def test_csv_is_its_text_and_its_rows() -> None:
    parsed = parse_bytes("people.csv", b"name,age\nAda,36\nAlan,41\n")
    assert parsed.text == "name,age\nAda,36\nAlan,41\n"
    assert parsed.rows == [{"name": "Ada", "age": "36"}, {"name": "Alan", "age": "41"}]


def test_json_is_reserialised_compactly_like_langflow() -> None:
    parsed = parse_bytes(
        "doc.json", json.dumps({"title": "Ｑueues", "n": [1, 2]}, indent=2).encode()
    )
    # LangFlow: orjson round trip, top-level strings NFKD-normalised (Ｑ -> Q).
    assert parsed.text == '{"title":"Queues","n":[1,2]}'
    assert parsed.data == {"title": "Queues", "n": [1, 2]}


def test_html_is_its_visible_text() -> None:
    page = (
        b"<html><head><style>p{}</style><script>alert(1)</script></head>"
        b"<body><h1>Title</h1><p>Body text</p></body></html>"
    )
    assert parse_bytes("page.html", page).text == "Title\nBody text"


def test_pdf_pages_are_joined_by_blank_lines() -> None:
    parsed = parse_bytes("report.pdf", minimal_pdf(["Page one text", "Page two text"]))
    assert parsed.text == "Page one text\n\nPage two text"


def test_docx_paragraphs_are_joined_by_blank_lines() -> None:
    parsed = parse_bytes("memo.docx", docx(["First paragraph", "Second paragraph"]))
    assert parsed.text == "First paragraph\n\nSecond paragraph"


def test_a_pdf_that_is_not_a_pdf_fails_naming_the_file() -> None:
    with pytest.raises(FileParseFailed, match="'fake.pdf' \\(f-1\\).*not a PDF"):
        parse_bytes("fake.pdf", b"just some text pretending", file_id="f-1")


def test_a_broken_pdf_fails_naming_the_file() -> None:
    broken = minimal_pdf(["x"])[:60]  # a PDF header, then nothing a reader can use
    with pytest.raises(FileParseFailed, match="'broken.pdf' \\(f-2\\)") as caught:
        parse_bytes("broken.pdf", broken, file_id="f-2")
    assert caught.value.code == "file_parse_failed"


def test_a_pdf_over_the_page_limit_fails() -> None:
    with pytest.raises(FileParseFailed, match="3 pages; the limit is 2"):
        parse_bytes("long.pdf", minimal_pdf(["a", "b", "c"]), FileLimits(max_pages=2))


def test_a_zip_bomb_docx_is_refused_before_it_is_inflated() -> None:
    bomb = zip_bomb_docx(8 * 1024 * 1024)
    assert len(bomb) < 200_000  # small on the wire
    limits = FileLimits(max_unpacked_bytes=1024 * 1024)
    with pytest.raises(FileParseFailed, match="'bomb.docx'.*unpacks to \\d+ bytes"):
        parse_bytes("bomb.docx", bomb, limits)
    with pytest.raises(FileTooLarge, match="unpacks to"):
        check_upload("bomb.docx", bomb, limits)


def test_a_docx_that_is_not_a_zip_fails() -> None:
    with pytest.raises(FileParseFailed, match="not a DOCX"):
        parse_bytes("memo.docx", b"plain text")


def test_text_over_the_character_limit_fails() -> None:
    with pytest.raises(FileParseFailed, match="more than 10 characters"):
        parse_bytes("big.txt", b"x" * 11, FileLimits(max_chars=10))


def test_malformed_json_fails_naming_the_file() -> None:
    with pytest.raises(FileParseFailed, match="'bad.json' could not be parsed as .json"):
        parse_bytes("bad.json", b'{"open": ')


def test_binary_content_named_txt_fails() -> None:
    with pytest.raises(FileParseFailed, match="'blob.txt'"):
        parse_bytes("blob.txt", bytes(range(256)) * 8 + b"\xff\xfe\x00\x81")


def test_upload_checks() -> None:
    with pytest.raises(EmptyFile):
        check_upload("empty.txt", b"", LIMITS)
    with pytest.raises(FileTooLarge):
        check_upload("big.txt", b"x" * 11, FileLimits(max_bytes=10))
    with pytest.raises(UnsupportedFileType, match=r"\.exe"):
        check_upload("tool.exe", b"MZ", LIMITS)
    with pytest.raises(UnsupportedFileType, match="not a PDF"):
        check_upload("fake.pdf", b"hello", LIMITS)
    check_upload("fine.pdf", minimal_pdf(["ok"]), LIMITS)
    check_upload("fine.docx", docx(["ok"]), LIMITS)


def test_file_ids_accepts_one_or_many() -> None:
    assert file_ids("") == []
    assert file_ids("abc") == ["abc"]
    assert file_ids(["a", "", "b"]) == ["a", "b"]
    with pytest.raises(ValueError, match="file id"):
        file_ids([1, 2])


class _Source:
    def __init__(self, files: dict[str, tuple[str, bytes]]) -> None:
        self.files = files
        self.reads = 0

    async def info(self, file_id: str) -> FileInfo:
        if file_id not in self.files:
            raise FileUnavailable(f"no file {file_id}")
        name, data = self.files[file_id]
        return FileInfo(file_id, name, len(data), f"sha-{hash(data)}", "text/plain")

    async def content(self, file_id: str) -> bytes:
        self.reads += 1
        return self.files[file_id][1]


def test_read_file_parses_once_per_content() -> None:
    import flows.files as files

    files.PARSED = ParseCache()
    source = _Source({"a": ("a.txt", b"same text"), "b": ("b.txt", b"same text")})

    async def both() -> list[str]:
        first = await read_file(source, "a", LIMITS)
        second = await read_file(source, "b", LIMITS)
        return [first.name, second.name, second.text]

    assert asyncio.run(both()) == ["a.txt", "b.txt", "same text"]
    assert source.reads == 1  # same bytes: the second read came from the cache


def test_read_file_of_a_missing_file_is_file_not_found() -> None:
    with pytest.raises(FileUnavailable) as caught:
        asyncio.run(read_file(_Source({}), "nope", LIMITS))
    assert caught.value.code == "file_not_found"


def test_runs_reading_the_same_content_at_once_parse_it_once() -> None:
    import flows.files as files

    files.PARSED = ParseCache()
    source = _Source({f"f{i}": (f"doc{i}.txt", b"shared document") for i in range(5)})

    async def together() -> list[str]:
        found = await asyncio.gather(*(read_file(source, f"f{i}", LIMITS) for i in range(5)))
        return [p.name for p in found]

    assert asyncio.run(together()) == [f"doc{i}.txt" for i in range(5)]
    assert source.reads == 1  # one read of the bytes, one parse; each run keeps its file name


def test_a_failed_parse_is_reported_under_each_runs_own_file() -> None:
    import flows.files as files

    files.PARSED = ParseCache()
    broken = minimal_pdf(["x"])[:60]
    source = _Source({"mine": ("mine.pdf", broken), "theirs": ("theirs.pdf", broken)})

    async def together() -> list[BaseException | files.ParsedFile]:
        return await asyncio.gather(
            read_file(source, "theirs", LIMITS),
            read_file(source, "mine", LIMITS),
            return_exceptions=True,
        )

    theirs, mine = asyncio.run(together())
    assert isinstance(mine, FileParseFailed)
    assert "mine.pdf" in mine.message
    assert "theirs" not in mine.message  # another run's file is never named
