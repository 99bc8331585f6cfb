"""How `ganpipe push` / `pull` quote DVC's errors: the last ERROR line with the files DVC lists below it."""
from __future__ import annotations

from ganpipe.results.share import dvc_error


def test_dvc_error_keeps_the_files_listed_below_the_error_line():
    text = ("Collecting   |1.00 [00:00]\nERROR: unexpected error\nERROR: failed to pull data from the cloud - "
            "Checkout failed for following targets:\nmodels/generator.safetensors\nsamples/samples.safetensors\n"
            "Is your cache up to date?\n")
    assert dvc_error(text) == ("failed to pull data from the cloud - Checkout failed for following targets: "
                               "models/generator.safetensors samples/samples.safetensors Is your cache up to date?")


def test_dvc_error_without_an_error_line_is_the_last_line_and_a_long_list_is_cut():
    assert dvc_error("one\n\ntwo\n") == "two"
    assert dvc_error("") == "(no output)"
    listed = "ERROR: Checkout failed for following targets:\n" + "\n".join(f"f{i}" for i in range(50))
    assert dvc_error(listed) == "Checkout failed for following targets: " + " ".join(f"f{i}" for i in range(10))
