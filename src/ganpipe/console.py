"""The one way the library talks to a person besides errors: `note(text)`. A note is progress or a warning
that needs no action to succeed (a resumed checkpoint, a retried store, an emulated precision). Errors are not
notes: they go through ganpipe.errors.run_guarded and are never silenced.

GANPIPE_QUIET=1 (or `with quiet():`) silences notes, for scripts and benchmarks that print their own output."""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator

QUIET_ENV = "GANPIPE_QUIET"
_silenced = 0


def silenced() -> bool:
    return _silenced > 0 or os.environ.get(QUIET_ENV, "").strip() not in ("", "0")


def note(text: str, err: bool = False) -> None:
    """Print one note, on stdout (stage logs) or with err=True on stderr (next to a command's real output)."""
    if not silenced():
        print(text, file=sys.stderr if err else sys.stdout, flush=True)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    global _silenced
    _silenced += 1
    try:
        yield
    finally:
        _silenced -= 1
