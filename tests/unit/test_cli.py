"""The `ganpipe` command's own surface: --version, --params before or after the verb, an example in every
verb's --help, and help and refusals that answer without importing torch."""
from __future__ import annotations

import subprocess
import sys

import pytest

from ganpipe import cli
from helpers import ROOT


def _verbs() -> list[str]:
    """Every verb the parser knows, so a new verb is checked without editing this file."""
    import argparse

    from ganpipe.cli.parser import build_parser

    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(sub.choices)


VERBS = _verbs()


def test_version_names_ganpipe_and_the_versions_that_decide_its_numbers(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and out.startswith("ganpipe ") and "torch " in out and "python " in out


@pytest.mark.parametrize("argv", [["--params", "nowhere.yaml", "compare"], ["compare", "--params", "nowhere.yaml"]])
def test_params_is_accepted_before_or_after_the_verb(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 1
    assert "params file nowhere.yaml not found" in capsys.readouterr().err


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_shows_an_example_in_its_help(verb, capsys):
    with pytest.raises(SystemExit):
        cli.main([verb, "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and f"ganpipe {verb}" in out.split("examples:")[1]


def test_the_verbs_a_user_reaches_for_are_there():
    assert {"run", "generate", "score", "compare", "evaluate", "reproduce"} <= set(VERBS)


def test_help_and_a_refused_argument_answer_without_importing_torch():
    """The parser and the checks before any work import no torch (2 to 3 s of start-up): `ganpipe --help`, every
    verb's --help and a refused argument answer at once."""
    code = ("import sys\nfrom ganpipe import cli\n"
            "for argv in [['--help'], *[[v, '--help'] for v in sys.argv[1:]], ['reproduce', '--', '--x']]:\n"
            "    try:\n        cli.main(argv)\n    except SystemExit:\n        pass\n"
            "print('torch imported:', 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, *VERBS], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "must not be empty, start with '-'" in done.stderr  # the refusal ran, not only the parser
    assert done.stdout.strip().splitlines()[-1] == "torch imported: False"
