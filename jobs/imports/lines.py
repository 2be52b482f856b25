"""Physical lines of a file, each held in memory only up to a length cap.

Lines are split at b"\\n" (kept, like iterating a binary file) from big blocks, in C. A line longer
than the cap is never held whole: the reader skips past it block by block and hands out only its
first bytes, recording its line number and full length, so byte offsets stay exact. Memory is then
bounded by the cap plus a block, whatever the file holds.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO

READ_BLOCK = 1 << 18
# What is kept of an over-long line: enough for the report's raw text (1,000 characters of UTF-8).
HEAD_BYTES = 4000


@dataclass(frozen=True)
class Lines:
    lines: list[bytes]
    oversize: dict[int, int]  # line number -> its full length, for lines handed out as their first bytes
    eof: bool  # nothing follows these lines


class LineSource:
    """Lines of `handle` from its current position (line number `first_line`) up to byte offset
    `end` (the end of the file when None)."""

    def __init__(self, handle: BinaryIO, *, first_line: int, max_line_bytes: int, end: int | None = None) -> None:
        self._handle = handle
        self._max = max_line_bytes
        self._left = None if end is None else end - handle.tell()
        self._next_line = first_line  # the number of _ready[0]
        self._ready: list[bytes] = []  # complete lines not handed out yet
        self._ready_bytes = 0
        self._oversize: dict[int, int] = {}
        self._tail = b""  # a line whose end is not read yet
        self._skipped: int | None = None  # bytes of an over-long line being skipped, when in one
        self._head = b""
        self._eof = False

    def take(self, max_lines: int, max_bytes: int) -> Lines:
        """At most `max_lines` lines, and no more than `max_bytes` bytes unless one line is longer."""
        while not self._eof and len(self._ready) < max_lines and self._ready_bytes < max_bytes:
            self._fill()
        count = min(max_lines, len(self._ready))
        if self._ready_bytes > max_bytes:  # rare: long rows
            total = 0
            for index, line in enumerate(self._ready[:count]):
                total += len(line)
                if total > max_bytes:
                    count = max(index, 1)
                    break
        lines, self._ready = self._ready[:count], self._ready[count:]
        self._ready_bytes = sum(map(len, self._ready))  # what is left: a block's worth at most
        after = self._next_line + count
        oversize = {n: size for n, size in self._oversize.items() if n < after}
        for n in oversize:
            del self._oversize[n]
        self._next_line = after
        return Lines(lines, oversize, self._eof and not self._ready)

    def _read(self) -> bytes:
        size = READ_BLOCK if self._left is None else min(READ_BLOCK, self._left)
        block = self._handle.read(size) if size > 0 else b""
        if self._left is not None:
            self._left -= len(block)
        return block

    def _fill(self) -> None:
        block = self._read()
        if not block:
            self._eof = True
            if self._skipped is not None:
                self._end_oversize()
            elif self._tail:
                self._push([self._tail], len(self._tail))
                self._tail = b""
            return
        if self._skipped is not None:
            newline = block.find(b"\n")
            if newline < 0:
                self._skipped += len(block)
                return
            self._skipped += newline + 1
            self._end_oversize()
            block = block[newline + 1 :]
        data = self._tail + block if self._tail else block
        lines = io.BytesIO(data).readlines()
        self._tail = lines.pop() if lines and not lines[-1].endswith(b"\n") else b""
        self._push(lines, len(data) - len(self._tail))
        if len(self._tail) > self._max:  # no line break within the cap: skip the rest of this line
            self._head, self._skipped, self._tail = self._tail[:HEAD_BYTES], len(self._tail), b""

    def _push(self, lines: list[bytes], size: int) -> None:
        if lines and max(map(len, lines)) > self._max:
            for index, line in enumerate(lines):
                if len(line) > self._max:
                    self._oversize[self._next_line + len(self._ready) + index] = len(line)
                    lines[index] = line[:HEAD_BYTES]
                    size -= len(line) - HEAD_BYTES
        self._ready += lines
        self._ready_bytes += size

    def _end_oversize(self) -> None:
        assert self._skipped is not None
        self._oversize[self._next_line + len(self._ready)] = self._skipped
        self._ready.append(self._head)
        self._ready_bytes += len(self._head)
        self._skipped, self._head = None, b""
