"""Files received chunk by chunk (an upload, a Storage download): size-capped, hashed, removed on failure."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from api.problems import ProblemError

# The file system is full (or a quota or file-size limit stopped the write): the server's problem, not
# the request's, so 507 with a retry hint instead of an anonymous 500.
_STORAGE_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def too_large(max_bytes: int) -> ProblemError:
    return ProblemError(413, f"the file is larger than the limit of {max_bytes} bytes")


def _storage_full() -> ProblemError:
    return ProblemError(
        507, "the server has no room to store the file right now; try again later", headers={"Retry-After": "60"}
    )


@dataclass(frozen=True)
class SpooledFile:
    path: Path
    size: int
    sha256: str


class DiskSink:
    def __init__(self, out: IO[bytes], max_bytes: int) -> None:
        self._out = out
        self._max_bytes = max_bytes
        self._digest = hashlib.sha256()
        self.size = 0

    async def write(self, chunks: list[bytes]) -> None:
        self.size += sum(len(chunk) for chunk in chunks)
        if self.size > self._max_bytes:
            raise too_large(self._max_bytes)
        for chunk in chunks:
            self._digest.update(chunk)
        # File I/O off the event loop: a slow disk must not stall every other request.
        await asyncio.to_thread(self._out.writelines, chunks)

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


@asynccontextmanager
async def disk_sink(directory: Path, max_bytes: int) -> AsyncIterator[tuple[DiskSink, Path]]:
    """A new file under `directory`; kept (flushed to disk) only if the block completes."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    path = directory / f"{uuid.uuid4().hex}.csv"
    out: IO[bytes] = await asyncio.to_thread(path.open, "wb")
    try:
        yield DiskSink(out, max_bytes), path
        await asyncio.to_thread(_flush_and_close, out)
    except OSError as error:
        await asyncio.to_thread(_discard, out, path)
        if error.errno in _STORAGE_FULL:
            raise _storage_full() from error
        raise
    except BaseException:
        await asyncio.to_thread(_discard, out, path)
        raise


def _flush_and_close(out: IO[bytes]) -> None:
    out.flush()
    os.fsync(out.fileno())
    out.close()


def _discard(out: IO[bytes], path: Path) -> None:
    with contextlib.suppress(OSError):  # closing flushes what is buffered, which fails again on a full disk
        out.close()
    path.unlink(missing_ok=True)
