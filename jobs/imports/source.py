"""Where an import job's file is read from: its Storage object, or (no bucket) a file on this machine.

A Storage object is read with range requests (kamioi.storage.ObjectReader), so a job resumed at its
checkpoint asks Storage for the bytes from there on; each open first checks that the object is the
one registered (size and ETag). A local file (`kamioi import --inline`, the test harnesses) is checked
against its registered size and sha256.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from jobs.errors import BadInputError
from jobs.imports.service import ImportJob, file_fingerprint
from kamioi.settings import Settings
from kamioi.storage import READ_BLOCK, ObjectChanged, ObjectReader

# Opens the file anew (buffered, so readline works), at byte 0 (the caller seeks); the caller closes it.
FileOpener = Callable[[], BinaryIO]


def verified_opener(job: ImportJob, settings: Settings) -> FileOpener:
    """Check the job's file once, and return how to open it. Raises PermanentJobError when it is gone
    or changed since registration; kamioi.storage.StorageUnavailable (the job is retried) when Storage
    cannot be reached."""
    if job.storage_bucket is None:
        path = Path(job.file_path)
        _verify_local(path, job)
        return lambda: path.open("rb", buffering=READ_BLOCK)
    bucket = job.storage_bucket

    def open_object() -> BinaryIO:
        reader = ObjectReader(
            settings, bucket=bucket, object_path=job.file_path, size=job.file_size, etag=job.storage_etag
        )
        return io.BufferedReader(reader, READ_BLOCK)

    try:
        with ObjectReader(
            settings, bucket=bucket, object_path=job.file_path, size=job.file_size, etag=job.storage_etag
        ) as reader:
            reader.verify()
    except ObjectChanged as error:
        raise BadInputError(str(error)) from error
    return open_object


def _verify_local(path: Path, job: ImportJob) -> None:
    if not path.is_file():
        raise BadInputError(f"file not found: {path} (a job without a Storage bucket reads this machine's disk)")
    size = path.stat().st_size
    if size != job.file_size:
        raise BadInputError(f"the file changed since it was registered: {size} bytes, expected {job.file_size}")
    if file_fingerprint(path)[0] != job.file_sha256:
        raise BadInputError("the file changed since it was registered: its sha256 differs")
