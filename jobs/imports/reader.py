"""Stream a CSV file in chunks from a byte offset, turning each chunk into COPY input for staging.

Never holds more than one chunk of lines (at most chunk_lines lines and about CHUNK_MAX_BYTES), and
never more than max_row_bytes of one record: a longer line is skipped unread (jobs.imports.lines).
Line numbers are physical lines (1 = the header), so a record whose quoted field spans lines is
numbered by its first line and the next record keeps the right number. Per record, Python only does
what SQL cannot: split CSV, catch what would break COPY (bad UTF-8, NUL bytes, wrong field counts,
malformed quotes, records over the size limit: rejected here with their line), and compute the
merchant key with the normalizer (LRU-cached: descriptors repeat). Types, ranges, enums and
duplicates are checked set-based in SQL afterwards.

Malformed quoting is contained: the bad record's first line is rejected and parsing resumes on the
next line, so an unterminated quote costs one line, not the rest of the file. A record that grows
past max_row_bytes (a quote that never closes, or a huge quoted field) is cut the same way, so the
decision never depends on where chunks end.
"""

from __future__ import annotations

import csv
import io
import itertools
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from jobs.errors import BadInputError
from jobs.imports.columns import HeaderMap, ImportKind
from jobs.imports.lines import LineSource
from jobs.imports.source import FileOpener

RAW_LINE_MAX_CHARS = 1000
MAX_HEADER_LINES = 20
FIRST_CHUNK_LINES = 5000
# Bounds a chunk of long rows (chunk_lines of them could otherwise reach gigabytes); files of
# ordinary rows fill chunk_lines long before.
CHUNK_MAX_BYTES = 32 << 20
# What the csv module raises when its input ends inside a record (strict mode).
CSV_UNFINISHED = "unexpected end of data"


@dataclass(frozen=True)
class Rejection:
    line_number: int
    column_name: str | None
    reason: str
    raw: str


@dataclass
class RawLines:
    """The chunk's original bytes, to show rejected records as they were in the file."""

    lines: list[bytes]
    first_line: int
    spans: dict[int, int] = field(default_factory=dict)  # line number -> physical lines, when > 1

    def raw(self, line_number: int) -> str:
        start = line_number - self.first_line
        data = b"".join(self.lines[start : start + self.spans.get(line_number, 1)])
        text = data.decode("utf-8", errors="replace").rstrip("\r\n")[:RAW_LINE_MAX_CHARS]
        return text.replace("\x00", "\ufffd")  # a text column cannot hold NUL


@dataclass
class Chunk:
    copy_data: bytes  # CSV: line_number, the mapped columns in kind order, merchant_key
    rows: int  # data records read, rejected ones included (blank lines are not records)
    rejections: list[Rejection]
    raw: RawLines
    end_offset: int  # byte offset just after the chunk: the next checkpoint
    end_line: int  # physical lines before end_offset
    last: bool


# Sniffed on the first bytes so a file that is not CSV text is named for what it is, not reported as
# "longer than N bytes" or "not valid UTF-8".
SNIFF_BYTES = 4096
_WHAT_IT_IS = (
    (b"\x1f\x8b", "the file is gzip-compressed, not CSV text: decompress it (gunzip) and import the CSV inside"),
    (b"PK\x03\x04", "the file is a ZIP archive (an Excel .xlsx workbook?), not CSV text: save the sheet as CSV UTF-8"),
    (b"%PDF", "the file is a PDF, not CSV text: export the data as CSV UTF-8"),
)
_UTF16 = 'the file is UTF-16 text: save it as CSV UTF-8 (Excel: "CSV UTF-8 (Comma delimited)") and import that'


def not_csv_text(head: bytes) -> str | None:
    """Why the file's first bytes cannot start a UTF-8 CSV (gzip, ZIP, PDF, UTF-16, binary), or None."""
    for magic, message in _WHAT_IT_IS:
        if head.startswith(magic):
            return message
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _UTF16
    if b"\x00" in head:
        # UTF-16 without a byte order mark: ASCII text with a NUL in every other byte.
        pairs = len(head) // 2
        if pairs and max(head[0::2].count(0), head[1::2].count(0)) >= pairs * 0.9:
            return _UTF16
        return "the file is binary (it holds NUL bytes), not CSV text"
    return None


def read_header(opener: FileOpener, max_field_chars: int, max_row_bytes: int) -> tuple[list[str], int, int]:
    """(header fields, byte offset after the header, lines it used)."""
    csv.field_size_limit(max_field_chars)
    with opener() as handle:
        lines: list[bytes] = []
        while len(lines) < MAX_HEADER_LINES:
            line = handle.readline(max_row_bytes + 1)
            if not line:
                break
            if not lines and (what := not_csv_text(line[:SNIFF_BYTES])):
                raise BadInputError(what)
            if len(line) > max_row_bytes:
                raise BadInputError(f"the header row is longer than {max_row_bytes} bytes")
            lines.append(line)
            try:
                text = b"".join(lines).decode("utf-8-sig")
            except UnicodeDecodeError as err:
                raise BadInputError("the header row is not valid UTF-8") from err
            try:
                header = next(csv.reader(io.StringIO(text, newline=""), strict=True), [])
            except csv.Error:
                continue  # a quoted header name spanning lines: read on
            if not any(h.strip() for h in header):
                raise BadInputError("the first line is empty: expected a header row")
            return header, sum(map(len, lines)), len(lines)
    if not lines:
        raise BadInputError("the file is empty: expected a header row")
    raise BadInputError("the header row is not valid CSV")


class ChunkReader:
    def __init__(
        self,
        opener: FileOpener,
        kind: ImportKind,
        header: HeaderMap,
        *,
        chunk_lines: int,
        max_field_chars: int,
        max_row_bytes: int,
        merchant_key: Callable[[str], str],
    ) -> None:
        self.opener = opener
        self.kind = kind
        self.header = header
        self.chunk_lines = chunk_lines
        self.max_field_chars = max_field_chars
        self.max_row_bytes = max_row_bytes
        self.merchant_key = merchant_key
        self._descriptor_index = header.positions[kind.descriptor_column]
        # Every kind maps at least two columns, so the getter always returns a tuple.
        self._pick = operator.itemgetter(*header.positions.values())

    def chunks(self, offset: int, line: int, end: int | None = None) -> Iterator[Chunk]:
        """Chunks from `offset` (a record boundary with `line` lines before it) to the end of the file,
        or to `end` (another record boundary)."""
        csv.field_size_limit(self.max_field_chars)
        with self.opener() as handle:
            handle.seek(offset)
            source = LineSource(handle, first_line=line + 1, max_line_bytes=self.max_row_bytes, end=end)
            carry: list[bytes] = []
            oversize: dict[int, int] = {}  # line number -> length, for lines held as their first bytes
            # A small first chunk gets the database busy while the next one is parsed.
            size = min(self.chunk_lines, FIRST_CHUNK_LINES)
            while True:
                batch = source.take(size, CHUNK_MAX_BYTES)
                size = self.chunk_lines
                oversize.update(batch.oversize)
                lines = carry + batch.lines if carry else batch.lines
                chunk, consumed = self._parse(lines, line + 1, batch.eof, oversize)
                carry = lines[consumed:]
                offset += sum(map(len, lines[:consumed]))
                for number in [n for n in oversize if n <= line + consumed]:
                    offset += oversize.pop(number) - len(lines[number - line - 1])  # the bytes skipped
                line += consumed
                chunk.end_offset, chunk.end_line = offset, line
                yield chunk
                if chunk.last:
                    return

    def _parse(self, lines: list[bytes], first_line: int, at_eof: bool, oversize: dict[int, int]) -> tuple[Chunk, int]:
        """Parse complete records; returns the chunk and how many lines it consumed (the rest is an
        unfinished quoted record, carried into the next chunk)."""
        texts, bad = _decode(lines)
        out = io.StringIO()
        write = csv.writer(out, lineterminator="\n").writerow
        raw = RawLines(lines, first_line)
        rejections: list[Rejection] = []
        width, pick, key_of, descriptor = self.header.width, self._pick, self.merchant_key, self._descriptor_index
        cap, too_long = self.max_row_bytes, f"row longer than {self.max_row_bytes} bytes"
        runs_on = f"{too_long}: a quoted field runs on from this line (a quote left open?)"
        # Over-long lines end the text handed to the csv module: they were never read whole.
        stops = sorted(n - first_line for n in oversize)
        rows, pos, consumed, count = 0, 0, len(lines), len(texts)

        def reject(index: int, column: str | None, reason: str) -> None:
            rejections.append(Rejection(first_line + index, column, reason, raw.raw(first_line + index)))

        def record_bytes(index: int, end: int) -> int:
            return sum(map(len, lines[index:end]))

        while pos < count:
            stop = next((i for i in stops if i >= pos), count)
            if stop == pos:
                rows += 1
                reject(pos, None, too_long)
                pos += 1
                continue
            reader = csv.reader(texts[pos:stop] if pos or stop < count else texts, strict=True)
            start = 0
            try:
                for record in reader:
                    end = reader.line_num
                    index, span, start = pos + start, end - start, end
                    if not record:
                        continue  # blank line
                    rows += 1
                    if span > 1:
                        if record_bytes(index, index + span) > cap:
                            reject(index, None, runs_on)  # cut like a bad quote: resume on its next line
                            pos = index + 1
                            break
                        raw.spans[first_line + index] = span
                    if bad and not bad.isdisjoint(range(index, index + span)):
                        reject(index, None, "not valid UTF-8 text (or contains a NUL byte)")
                    elif len(record) != width:
                        reject(index, None, f"expected {width} fields, found {len(record)}")
                    else:
                        write((first_line + index, *pick(record), key_of(record[descriptor])))
                else:
                    pos = stop
            except csv.Error as err:
                index, reached = pos + start, pos + reader.line_num
                if reached >= stop and stop == count and not at_eof:
                    if record_bytes(index, count) <= cap:
                        consumed = index  # the record continues in the next batch of lines
                        break
                    reason = runs_on
                elif reached >= stop and stop < count and str(err) == CSV_UNFINISHED:
                    reason = runs_on  # into an over-long line
                else:
                    reason = runs_on if record_bytes(index, reached) > cap else f"malformed CSV: {err}"
                rows += 1
                reject(index, None, reason)
                pos = index + 1
        chunk = Chunk(out.getvalue().encode(), rows, rejections, raw, 0, 0, at_eof and consumed == len(lines))
        return chunk, consumed


def _decode(lines: list[bytes]) -> tuple[list[str], set[int]]:
    """Decoded lines, and the indexes of lines that are not UTF-8 or hold a NUL (COPY refuses both)."""
    bad: set[int] = set()
    try:
        texts = list(map(bytes.decode, lines))
    except UnicodeDecodeError:
        texts = []
        for index, line in enumerate(lines):
            try:
                texts.append(line.decode())
            except UnicodeDecodeError:
                bad.add(index)
                texts.append(line.decode(errors="replace"))
    if any(map(operator.contains, lines, itertools.repeat(b"\x00"))):
        bad.update(i for i, line in enumerate(lines) if b"\x00" in line)
    return texts, bad
