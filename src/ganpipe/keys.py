"""Names shared by the pipeline, tracking, reproduce and reports, written once: the MLflow tags that say where a
run's numbers came from, and the prefixes of the score metrics (eval/* for samples, eval_real/* for the ceiling)."""

CONFIG_TAG = "ganpipe.config"  # the configs/ overlays a run applied, joined by '+' ('params.yaml' when none)
MODEL_URI_TAG = "ganpipe.model_uri"  # models:/<id> of the generator logged as an MLflow model
GENERATOR_TAG = "ganpipe.generator_sha256"  # the generator file a training run wrote (and an evaluation scored)
BEST_GENERATOR_TAG = "ganpipe.generator_best_sha256"  # the best-scored generator a training run wrote (sample.from)
PRECISION_TAG = "train.precision_resolved"  # fp32 | bf16: what train.precision (e.g. auto) resolved to on the machine
DATA_TAG = "data.sha256"  # content hash of the prepared data
KIND_TAG = "ganpipe.run_kind"  # "training" or "evaluation"; runs from before this tag are training runs
EVALUATES_TAG = "ganpipe.evaluates_run"  # an evaluation run: the training run whose generator it scored
PROVENANCE_TAG = "eval.provenance"  # the key of the evaluation whose scores a run holds (eval/identity.py)
CLASSIFIER_TAG = "eval.classifier_sha256"
SAMPLES_TAG = "samples.sha256"  # samples made elsewhere (`ganpipe evaluate --samples`)
SCORE_PREFIXES = ("eval/", "eval_real/")  # metric names of the samples' scores and of the real-data ceiling
INCEPTION_PREFIX = "inception_"  # Inception-space scores: eval/inception_fid, eval_real/inception_fid, ...
# a `ganpipe tune` trial: the worker sets these variables for its `dvc exp run`, every stage's run gets the tags
TUNE_STUDY_ENV, TUNE_TRIAL_ENV = "GANPIPE_TUNE_STUDY", "GANPIPE_TUNE_TRIAL"  # the study's name, the trial's number
TUNE_STUDY_TAG, TUNE_TRIAL_TAG = "tune.study", "tune.trial"
TUNE_STATE_TAG = "tune.state"  # on a trial's training run: complete | pruned | failed
