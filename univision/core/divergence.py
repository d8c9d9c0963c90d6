"""Stops training on a NaN/inf loss or weights, before they are checkpointed.

Model Garden's blow-up check (`official.core.actions.RecoveryCondition`,
configured by `trainer.recovery_max_trials` and `trainer.loss_upper_bound`)
looks at the mean loss of each train loop. With its default
(`recovery_max_trials=0`) it raises `RuntimeError: The loss value is NaN
after training loop and it happens 1 times.`: no step, no checkpoint, no
advice. With `recovery_max_trials=-1` it does not check at all. And it only
looks at the loss: the update of a loop's last step can turn the weights to
NaN/inf while that loop's loss was still finite, and Orbit then checkpoints
those weights as the latest.

`DivergenceGuard` is a train action that runs before Model Garden's: it
checks the loop's loss and every floating-point weight, and raises
`TrainingDivergedError` naming the step, the loss, the last good checkpoint
and what to change. Orbit checkpoints after the train actions, so no
checkpoint with NaN/inf weights is saved. (The checkpoint before the failing
loop can still hold weights that are finite but already blown up by its last
update, e.g. after a learning rate of 1e30: only the next loss shows that.)
When `recovery_max_trials > 0` the guard lets that many non-finite losses
through to Model Garden, which restores the last checkpoint and retries;
non-finite weights are never let through. Losses that are finite but above
`loss_upper_bound` stay Model Garden's to handle.
"""
from collections.abc import Mapping

import numpy as np
import tensorflow as tf, tf_keras
from official.core import config_definitions as cfg

_ADVICE = (
    'Lower the learning rate (trainer.optimizer_config.learning_rate), '
    'lengthen the warmup (trainer.optimizer_config.warmup), clip gradients '
    '(trainer.optimizer_config.optimizer.<type>.global_clipnorm) or check the '
    'input data; rerun with the same --model_dir to resume from {resume}.')


class TrainingDivergedError(RuntimeError):
  """The loss or the weights became NaN or infinite during training."""


class DivergenceGuard:
  """An Orbit train action raising `TrainingDivergedError` on divergence."""

  def __init__(self, model: tf_keras.Model, global_step: tf.Variable,
               checkpoint_manager: tf.train.CheckpointManager | None,
               trainer_config: cfg.TrainerConfig):
    """Initializes the guard.

    Args:
      model: The model being trained; its weights are checked.
      global_step: The trainer's step counter.
      checkpoint_manager: Names the last good checkpoint in the message.
      trainer_config: `steps_per_loop` (for the message) and
        `recovery_max_trials` (non-finite losses left to Model Garden).
    """
    self._model = model
    self._global_step = global_step
    self._checkpoint_manager = checkpoint_manager
    self._steps_per_loop = trainer_config.steps_per_loop
    self._recoveries_left = max(trainer_config.recovery_max_trials, 0)
    self._finite_flags = None  # (weights, traced check), made on first use.

  def _non_finite_weights(self) -> list[str]:
    """Names of weights holding NaN/inf, checked on the device.

    One traced function reduces every weight to a finite flag, so only one
    boolean per weight reaches the host (not the weights themselves: a
    Hiera-H would move 2.7 GB per loop).
    """
    if self._finite_flags is None:
      weights = [w for w in self._model.weights if w.dtype.is_floating]
      self._finite_flags = (weights, tf.function(lambda: tf.stack(
          [tf.reduce_all(tf.math.is_finite(w)) for w in weights])))
    weights, flags = self._finite_flags
    return [w.name for w, ok in zip(weights, flags().numpy()) if not ok]

  def _fail(self, what: str) -> TrainingDivergedError:
    latest = (self._checkpoint_manager.latest_checkpoint
              if self._checkpoint_manager else None)
    kept = (f'The latest checkpoint, {latest}, was written before this loop '
            '(its weights are finite).' if latest else
            'No checkpoint was written.')
    resume = latest or 'step 0'
    return TrainingDivergedError(
        f'Training diverged in the train loop ending at step '
        f'{int(self._global_step.numpy())} (trainer.steps_per_loop='
        f'{self._steps_per_loop}): {what}. {kept} '
        + _ADVICE.format(resume=resume))

  def __call__(self, output: Mapping[str, object]) -> None:
    """Checks one train loop's output and the weights after it.

    Raises:
      TrainingDivergedError: on a non-finite loss (beyond the recoveries
        Model Garden is configured to attempt) or non-finite weights.
    """
    loss = output.get('training_loss')
    loss = None if loss is None else float(loss)
    if loss is not None and not np.isfinite(loss):
      if self._recoveries_left > 0:
        self._recoveries_left -= 1
        return  # Model Garden's RecoveryAction restores the last checkpoint.
      raise self._fail(f'the mean training loss is {loss}')
    bad = self._non_finite_weights()
    if bad:
      raise self._fail(f'{len(bad)} weights hold NaN or inf values after the '
                       f'last update (first: {bad[0]}), the mean training '
                       f'loss before it was {loss}')
