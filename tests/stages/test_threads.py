"""The stages that score and sample run on their params' thread count, not the machine's: torch CPU results
change with the thread count (a large-K matmul of the classifier sums in another order), so a clone on a
machine with more cores must still rebuild the same bytes."""
import torch

from helpers import stage


def test_sample_reference_and_evaluate_bytes_do_not_depend_on_the_callers_thread_count(workdir):
    for name in ("prepare", "train_classifier", "train"):
        assert stage(name)([]) == 0
    outputs = []
    for ambient in (1, 3):  # what a 1-core and a 3-core machine would start torch with
        for name in ("sample", "reference", "evaluate"):
            torch.set_num_threads(ambient)
            assert stage(name)([]) == 0
            assert torch.get_num_threads() == 2, name  # sample.threads, evaluate.threads of params.yaml
        outputs.append([(workdir / p).read_bytes() for p in ("samples/samples.safetensors", "metrics/eval.json",
                                                              "data/reference/inception.safetensors")])
    assert outputs[0] == outputs[1]
