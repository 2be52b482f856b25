"""The import reader with a small row cap: over-long records are rejected by line number without
being held whole, the rows around them are read, and offsets stay exact for the checkpoint."""

from __future__ import annotations

import csv
import io
import tracemalloc
from pathlib import Path

import pytest

from jobs.errors import PermanentJobError
from jobs.imports.columns import KINDS, map_header
from jobs.imports.lines import READ_BLOCK, LineSource
from jobs.imports.reader import ChunkReader, read_header
from jobs.imports.source import FileOpener

CAP = 100
TOO_LONG = f"row longer than {CAP} bytes"
RUNS_ON = f"{TOO_LONG}: a quoted field runs on from this line (a quote left open?)"
USER = "00000000-0000-4000-a000-000000000002"
HEADER = b"user_id,txn_date,descriptor,amount\n"


def opener(path: Path) -> FileOpener:
    return lambda: path.open("rb")


def row(n: int, newline: bytes = b"\n") -> bytes:
    return f"{USER},2026-03-01,SHOP {n},{n}.00".encode() + newline


def read_all(path: Path, chunk_lines: int = 50, cap: int = CAP) -> tuple[list[list[str]], dict[int, str], int, int]:
    """(COPY rows, {line: reason} of the rejections, the last chunk's end offset and end line)."""
    header, offset, line = read_header(opener(path), 100_000, cap)
    reader = ChunkReader(
        opener(path),
        KINDS["transactions"],
        map_header(KINDS["transactions"], header),
        chunk_lines=chunk_lines,
        max_field_chars=100_000,
        max_row_bytes=cap,
        merchant_key=str.lower,
    )
    rows: list[list[str]] = []
    rejected: dict[int, str] = {}
    for chunk in reader.chunks(offset, line):
        rows += csv.reader(io.StringIO(chunk.copy_data.decode()))
        rejected.update((r.line_number, r.reason) for r in chunk.rejections)
        offset, line = chunk.end_offset, chunk.end_line
    return rows, rejected, offset, line


def landed(rows: list[list[str]]) -> list[int]:
    return [int(r[0]) for r in rows]


def test_a_long_line_in_the_middle_is_rejected_and_the_rows_around_it_land(tmp_path: Path) -> None:
    path = tmp_path / "middle.csv"
    long_line = f"{USER},2026-03-01,{'X' * 5000},1.00\n".encode()
    path.write_bytes(HEADER + row(1) + row(2) + long_line + row(3) + row(4))
    rows, rejected, offset, line = read_all(path)
    assert landed(rows) == [2, 3, 5, 6]
    assert rejected == {4: TOO_LONG}
    assert (offset, line) == (path.stat().st_size, 6)
    assert rows[2][3] == "SHOP 3"


def test_a_long_last_line_without_a_newline(tmp_path: Path) -> None:
    path = tmp_path / "last.csv"
    path.write_bytes(HEADER + row(1) + b"Y" * (3 * READ_BLOCK + 17))
    rows, rejected, offset, line = read_all(path)
    assert landed(rows) == [2]
    assert rejected == {3: TOO_LONG}
    assert (offset, line) == (path.stat().st_size, 3)


def test_a_quoted_field_with_newlines_past_the_cap_is_cut_at_its_first_line(tmp_path: Path) -> None:
    """Each physical line is short, the record is not: it is rejected by its first line and parsing
    resumes on the next line (as for a quote that never closes), whatever the chunk size."""
    path = tmp_path / "quoted.csv"
    record = f'{USER},2026-03-01,"NOTE\n'.encode() + b"more note text\n" * 10 + b'END",1.00\n'
    path.write_bytes(HEADER + row(1) + record + row(2))
    results = {chunk_lines: read_all(path, chunk_lines) for chunk_lines in (1, 2, 5, 50)}
    rows, rejected, offset, line = results[50]
    assert landed(rows) == [2, 15]
    assert rejected[3] == RUNS_ON
    assert set(rejected) == set(range(3, 15))  # the record's other lines are not rows either
    assert (offset, line) == (path.stat().st_size, 15)
    assert all(result == results[50] for result in results.values())


def test_a_quoted_field_with_newlines_under_the_cap_is_one_row(tmp_path: Path) -> None:
    path = tmp_path / "short-quoted.csv"
    path.write_bytes(HEADER + f'{USER},2026-03-01,"TWO\nLINES",1.00\n'.encode() + row(2))
    for chunk_lines in (1, 50):
        rows, rejected, _, _ = read_all(path, chunk_lines)
        assert (landed(rows), rejected) == ([2, 4], {})
        assert rows[0][3] == "TWO\nLINES"


def test_a_record_running_into_a_long_line_is_cut_and_so_is_the_line(tmp_path: Path) -> None:
    path = tmp_path / "into-long.csv"
    path.write_bytes(HEADER + row(1) + f'{USER},2026-03-01,"OPEN\n'.encode() + b"Z" * 5000 + b'",1.00\n' + row(2))
    rows, rejected, offset, line = read_all(path)
    assert landed(rows) == [2, 5]
    assert rejected == {3: RUNS_ON, 4: TOO_LONG}
    assert (offset, line) == (path.stat().st_size, 5)


def test_crlf_lines_long_and_short(tmp_path: Path) -> None:
    path = tmp_path / "crlf.csv"
    long_line = b"W" * 400 + b"\r\n"
    path.write_bytes(HEADER.replace(b"\n", b"\r\n") + row(1, b"\r\n") + long_line + row(2, b"\r\n"))
    rows, rejected, offset, line = read_all(path)
    assert landed(rows) == [2, 4]
    assert [r[4] for r in rows] == ["1.00", "2.00"]  # no stray \r in the last field
    assert rejected == {3: TOO_LONG}
    assert (offset, line) == (path.stat().st_size, 4)


def test_resuming_at_any_checkpoint_after_a_long_line_reads_the_same_rows(tmp_path: Path) -> None:
    path = tmp_path / "resume.csv"
    path.write_bytes(HEADER + row(1) + b"L" * 1000 + b"\n" + row(2) + row(3) + b"M" * 300)
    header, offset, line = read_header(opener(path), 100_000, CAP)
    reader = ChunkReader(
        opener(path), KINDS["transactions"], map_header(KINDS["transactions"], header),
        chunk_lines=1, max_field_chars=100_000, max_row_bytes=CAP, merchant_key=str.lower,
    )  # fmt: skip
    straight = [(c.copy_data, c.end_offset, c.end_line) for c in reader.chunks(offset, line)]
    for n, (_, at, at_line) in enumerate(straight[:-1]):
        resumed = [(c.copy_data, c.end_offset, c.end_line) for c in reader.chunks(at, at_line)]
        assert resumed == straight[n + 1 :]
    # Stopping at a checkpoint (how a retry replays the committed part) ends exactly there.
    _, at, at_line = straight[2]
    assert [c.end_offset for c in reader.chunks(offset, line, end=at)][-1] == at


def test_a_long_line_is_never_held_whole(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    line_bytes = 8 << 20
    with path.open("wb") as out:
        out.write(HEADER + row(1))
        for _ in range(64):
            out.write(b"H" * (line_bytes // 64))
        out.write(b"\n" + row(2))
    tracemalloc.start()
    try:
        rows, rejected, _, _ = read_all(path, cap=1024)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (landed(rows), rejected) == ([2, 4], {3: "row longer than 1024 bytes"})
    assert peak < line_bytes // 4, f"peak {peak:,} bytes while skipping an 8 MB line"


def test_line_source_hands_out_lines_by_count_and_bytes(tmp_path: Path) -> None:
    path = tmp_path / "lines.bin"
    path.write_bytes(b"a\n" + b"b" * 50 + b"\n" + b"c\n" + b"d" * 70)
    with path.open("rb", buffering=0) as handle:
        source = LineSource(handle, first_line=1, max_line_bytes=60)
        first = source.take(2, 1000)
        assert (first.lines, first.oversize, first.eof) == ([b"a\n", b"b" * 50 + b"\n"], {}, False)
        rest = source.take(10, 1000)
        assert (rest.lines, rest.oversize, rest.eof) == ([b"c\n", b"d" * 70], {4: 70}, True)
    with path.open("rb", buffering=0) as handle:
        by_bytes = LineSource(handle, first_line=1, max_line_bytes=60)
        assert by_bytes.take(10, 10).lines == [b"a\n"]  # the next line would pass the byte budget
        assert by_bytes.take(10, 10).lines == [b"b" * 50 + b"\n"]  # one line always comes, even a big one


def test_a_header_longer_than_the_cap_fails_the_job(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_bytes(b"user_id," + b"x" * 200 + b"\n" + row(1))
    with pytest.raises(PermanentJobError, match=f"header row is longer than {CAP} bytes"):
        read_header(opener(path), 100_000, CAP)


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (b"\x1f\x8b\x08\x00" + b"\x00" * 200, "gzip-compressed"),
        ("user_id,txn_date,descriptor,amount\n".encode("utf-16"), "UTF-16 text"),
        ("user_id,txn_date,descriptor,amount\n".encode("utf-16-le"), "UTF-16 text"),  # no byte order mark
        (b"PK\x03\x04" + b"\x14" * 300, "ZIP archive"),
        (b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 2, "binary"),
    ],
)
def test_a_file_that_is_not_csv_text_is_named_for_what_it_is(tmp_path: Path, content: bytes, named: str) -> None:
    path = tmp_path / "upload.csv"
    path.write_bytes(content)
    with pytest.raises(PermanentJobError, match=named):
        read_header(opener(path), 100_000, CAP)


@pytest.mark.parametrize(("delimiter", "named"), [(";", "semicolons"), ("\t", "tabs")])
def test_a_header_split_by_another_delimiter_says_so(delimiter: str, named: str) -> None:
    header = delimiter.join(["user_id", "txn_date", "descriptor", "amount"])
    with pytest.raises(PermanentJobError, match=f"separated by {named}"):
        map_header(KINDS["transactions"], [header])


def test_a_utf8_file_with_a_bom_is_still_csv(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + HEADER + row(1))
    assert read_header(opener(path), 100_000, CAP)[0] == ["user_id", "txn_date", "descriptor", "amount"]
