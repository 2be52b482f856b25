"""A real local SMTP server that keeps every mail it accepts in a Maildir, like `supabase start`'s mail catcher.

`kamioi up` runs it on KAMIOI_SMTP_PORT (54325) with the inbox in `<state dir>/mail`, and points the
worker's SMTP settings at it; `kamioi status` shows how many mails the inbox holds, and tests read
it with `Inbox`. It accepts any sender and recipient, without authentication or TLS.

    python -m local_stack.standins.smtp_catcher --port 54325 --maildir .local/mail
"""

from __future__ import annotations

import argparse
import email.policy
import mailbox
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox


def _delivered_at(key: str) -> tuple[int, int]:
    # Maildir names a message "<seconds>.M<microseconds>P<pid>...".
    found = re.match(r"(\d+)\.M(\d+)", key)
    return (int(found[1]), int(found[2])) if found else (0, 0)


class Inbox:
    """The mails a catcher kept, oldest first."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir

    def messages(self) -> list[EmailMessage]:
        if not (self.maildir / "new").is_dir():
            return []
        box = mailbox.Maildir(self.maildir, create=False)
        parser = BytesParser(policy=email.policy.default)
        return [parser.parsebytes(box.get_bytes(key)) for key in sorted(box.keys(), key=_delivered_at)]

    def count(self) -> int:
        return len(mailbox.Maildir(self.maildir, create=False)) if (self.maildir / "new").is_dir() else 0


@contextmanager
def serve_in_thread(maildir: Path, *, port: int, host: str = "127.0.0.1") -> Iterator[Inbox]:
    """Run a catcher on a background thread (its start checks that it answers); yields its inbox."""
    controller = Controller(Mailbox(maildir), hostname=host, port=port)
    controller.start()
    try:
        yield Inbox(maildir)
    finally:
        controller.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", type=Path, required=True)
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with serve_in_thread(args.maildir, host=args.host, port=args.port):
        print(f"SMTP catcher listening on {args.host}:{args.port}, inbox {args.maildir}", flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
