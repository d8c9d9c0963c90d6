"""Runs one experiment config with Model Garden's trainer, in process.

`train.py` and the studies that train many runs in one process (e.g.
`univision.studies.model_patches`) both go through `run`: the config is
written to the model folder, the mixed-precision policy and distribution
strategy come from `params.runtime`, the task from the task registry, and
Model Garden's `train_lib.OrbitExperimentRunner` drives the steps,
checkpoints (resuming from the latest one in `model_dir`) and evaluations.

Added to Model Garden's runner: a `DivergenceGuard` train action (a NaN/inf
loss, weights or optimizer state stop the run with a clear message before
they are checkpointed); a `DataLossError` from a damaged TFRecord file is
re-raised naming the file and byte offset (`tfrecord_check`); Orbit's
messages are printed once (Orbit both prints and logs each one); and, with
`progress_lines`, each train loop is reported as one `progress` line (step,
loss, steps/s, ETA) instead of Orbit's block of every train metric; a
training run's wall time is added up over the processes that train it
(`run_clock`, `<model_dir>/run_seconds.json`).
"""
from collections.abc import Iterator, Mapping
import contextlib
import re

from absl import logging
import tensorflow as tf, tf_keras
from official.common import distribute_utils
from official.core import config_definitions as cfg
from official.core import task_factory
from official.core import train_lib
from official.core import train_utils
from official.modeling import performance
from orbit import controller as orbit_controller

from univision.core import divergence
from univision.core import progress
from univision.core import run_clock
from univision.core import tfrecord_check

# Orbit's report after each train loop: 'train | step: 100 | steps/sec: ...'.
_ORBIT_TRAIN_REPORT = re.compile(r'train \| step: +\d+ \| steps/sec:')


class _ProgressLines:
  """An Orbit train action printing one progress line per train loop."""

  def __init__(self, global_step: tf.Variable, train_steps: int):
    self._global_step = global_step
    self._progress = progress.Progress(train_steps, 'train step')

  def __call__(self, output: Mapping[str, tf.Tensor]) -> None:
    loss = output.get('training_loss')
    metrics = None if loss is None else {'loss': float(loss)}
    print(self._progress.line(int(self._global_step.numpy()),
                              metrics=metrics))


class _GuardedRunner(train_lib.OrbitExperimentRunner):
  """Model Garden's runner with `DivergenceGuard` as the first train action.

  First, so that it sees each loop's output before Model Garden's recovery
  action (see `divergence`). With `progress_lines`, `_ProgressLines` follows
  it (a diverged loop ends the run before its line).
  """

  def __init__(self, *args, progress_lines: bool = False, **kwargs):
    self._progress_lines = progress_lines
    super().__init__(*args, **kwargs)

  def _build_controller(self, trainer, evaluator, save_summary=True,
                        train_actions=None, **kwargs):
    if trainer:
      guard = divergence.DivergenceGuard(trainer.model, trainer.global_step,
                                         self.checkpoint_manager,
                                         self.params.trainer,
                                         optimizer=trainer.optimizer)
      ours = [guard]
      if self._progress_lines:
        ours.append(_ProgressLines(trainer.global_step,
                                   self.params.trainer.train_steps))
      train_actions = [*ours, *(train_actions or [])]
    return super()._build_controller(trainer, evaluator, save_summary,
                                     train_actions, **kwargs)


@contextlib.contextmanager
def _orbit_messages_once(progress_lines: bool) -> Iterator[None]:
  """Orbit's messages printed only (Orbit prints and logs each one).

  Printed rather than logged: they are Orbit's console output, which scripts
  read on stdout. With `progress_lines`, the report after each train loop is
  logged at verbosity 1 (`-v 1`) instead; TensorBoard has its metrics.

  Args:
    progress_lines: Whether `_ProgressLines` reports the train loops.

  Yields:
    Nothing; Orbit's own logging is back on exit.
  """
  def log(message: str) -> None:
    if progress_lines and _ORBIT_TRAIN_REPORT.match(message):
      logging.vlog(1, message)
    else:
      print(message)

  orbit_log = orbit_controller._log  # pylint: disable=protected-access
  orbit_controller._log = log  # pylint: disable=protected-access
  try:
    yield
  finally:
    orbit_controller._log = orbit_log  # pylint: disable=protected-access


def run(params: cfg.ExperimentConfig, model_dir: str,
        mode: str = 'train_and_eval', progress_lines: bool = False
        ) -> tuple[tf_keras.Model, dict[str, float]]:
  """Trains and/or evaluates `params` in `model_dir`.

  Args:
    params: A validated experiment config.
    model_dir: Checkpoints, summaries and `params.yaml` go here.
    mode: Model Garden's modes (`train`, `eval`, `train_and_eval`, ...).
    progress_lines: Report each train loop as one line (`train step 200/1500
      (13%) | loss 0.8123 | 4.12 steps/s | ETA 5m16s`) instead of Orbit's
      block of every train metric.

  Returns:
    The model and the metrics of the last evaluation (empty if none ran).

  Raises:
    divergence.TrainingDivergedError: if the loss or weights become NaN/inf.
    tfrecord_check.CorruptRecordFileError: naming the damaged input file.
  """
  if params.runtime.mixed_precision_dtype:
    performance.set_mixed_precision_policy(params.runtime.mixed_precision_dtype)
  strategy = distribute_utils.get_distribution_strategy(
      distribution_strategy=params.runtime.distribution_strategy,
      all_reduce_alg=params.runtime.all_reduce_alg,
      num_gpus=params.runtime.num_gpus,
      tpu_address=params.runtime.tpu)
  # Multi-worker: only the chief writes the config and summaries (the other
  # workers' checkpoints go to temporary folders, as Model Garden does).
  if 'train' in mode and strategy.extended.should_checkpoint:
    train_utils.serialize_config(params, model_dir)
  with strategy.scope():
    task = task_factory.get_task(params.task, logging_dir=model_dir)
  last_eval = {}
  # A training run's wall time over every process that trains it (the
  # chief keeps it; an evaluation alone adds nothing).
  clock = (run_clock.RunClock(model_dir)
           if 'train' in mode and strategy.extended.should_checkpoint
           else None)
  clock_actions = [clock] if clock else []
  try:
    with _orbit_messages_once(progress_lines):
      runner = _GuardedRunner(
          distribution_strategy=strategy, task=task, mode=mode,
          params=params, model_dir=model_dir,
          save_summary=strategy.extended.should_save_summary,
          train_actions=clock_actions,
          eval_actions=[lambda logs: last_eval.update(logs),
                        *clock_actions],
          progress_lines=progress_lines)
      model, _ = runner.run()
      if clock:
        clock.write()
  except tf.errors.DataLossError as e:
    try:
      located = tfrecord_check.locate_damage(params, e)
    except (tf.errors.OpError, OSError) as scan_error:
      logging.warning('Could not scan the input files for the damaged one: '
                      '%s', scan_error)
      located = None
    if located is None:
      raise
    raise located from e
  return model, {k: float(v) for k, v in last_eval.items()}
