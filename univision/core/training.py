"""Runs one experiment config with Model Garden's trainer, in process.

`train.py` and the studies that train many runs in one process (e.g.
`univision.studies.model_patches`) both go through `run`: the config is
written to the model folder, the mixed-precision policy and distribution
strategy come from `params.runtime`, the task from the task registry, and
Model Garden's `train_lib.run_experiment` drives the steps, checkpoints
(resuming from the latest one in `model_dir`) and evaluations.
"""
import tf_keras
from official.common import distribute_utils
from official.core import config_definitions as cfg
from official.core import task_factory
from official.core import train_lib
from official.core import train_utils
from official.modeling import performance


def run(params: cfg.ExperimentConfig, model_dir: str,
        mode: str = 'train_and_eval'
        ) -> tuple[tf_keras.Model, dict[str, float]]:
  """Trains and/or evaluates `params` in `model_dir`.

  Args:
    params: A validated experiment config.
    model_dir: Checkpoints, summaries and `params.yaml` go here.
    mode: Model Garden's modes (`train`, `eval`, `train_and_eval`, ...).

  Returns:
    The model and the metrics of the last evaluation (empty if none ran).
  """
  if 'train' in mode:
    train_utils.serialize_config(params, model_dir)
  if params.runtime.mixed_precision_dtype:
    performance.set_mixed_precision_policy(params.runtime.mixed_precision_dtype)
  strategy = distribute_utils.get_distribution_strategy(
      distribution_strategy=params.runtime.distribution_strategy,
      all_reduce_alg=params.runtime.all_reduce_alg,
      num_gpus=params.runtime.num_gpus,
      tpu_address=params.runtime.tpu)
  with strategy.scope():
    task = task_factory.get_task(params.task, logging_dir=model_dir)
  last_eval = {}
  model, _ = train_lib.run_experiment(
      distribution_strategy=strategy, task=task, mode=mode,
      params=params, model_dir=model_dir,
      eval_actions=[lambda logs: last_eval.update(logs)])
  return model, {k: float(v) for k, v in last_eval.items()}
