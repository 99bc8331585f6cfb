"""Notes go through one function (ganpipe.console.note) that GANPIPE_QUIET or quiet() silences; the library
prints nothing else except the `ganpipe` command's own output and error lines."""
from __future__ import annotations

import re

from ganpipe import console

from helpers import ROOT


def test_a_note_goes_to_stdout_or_stderr_and_can_be_silenced(capsys, monkeypatch):
    console.note("resuming")
    console.note("store is back", err=True)
    out, err = capsys.readouterr()
    assert out == "resuming\n" and err == "store is back\n"
    with console.quiet():
        console.note("hidden")
    monkeypatch.setenv(console.QUIET_ENV, "1")
    console.note("hidden too", err=True)
    assert capsys.readouterr() == ("", "")
    monkeypatch.setenv(console.QUIET_ENV, "0")
    console.note("shown again")
    assert capsys.readouterr().out == "shown again\n"


def test_the_library_prints_only_through_note_the_command_and_the_error_runner():
    allowed = {"console.py", "errors.py"}  # notes; error lines (and the command's results: ganpipe/cli/)
    offenders = [f"{path.relative_to(ROOT)}:{n}" for path in sorted((ROOT / "src" / "ganpipe").rglob("*.py"))
                 if path.name not in allowed and path.parent.name != "cli"
                 for n, line in enumerate(path.read_text().splitlines(), 1) if re.search(r"(?<![\w.])print\(", line)]
    assert not offenders, f"use ganpipe.console.note: {offenders}"
