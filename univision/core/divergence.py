"""Stops training on a NaN/inf loss or state, before it is checkpointed.

Model Garden's blow-up check (`official.core.actions.RecoveryCondition`,
configured by `trainer.recovery_max_trials`, `trainer.loss_upper_bound` and
`trainer.recovery_begin_steps`) looks at the mean loss of each train loop.
With its default (`recovery_max_trials=0`) it raises `RuntimeError: The loss
value is NaN after training loop and it happens 1 times.`: no step, no
checkpoint, no advice. With `recovery_max_trials=-1` it does not check at
all. It misses a loss of -inf, and +inf before `recovery_begin_steps`. And it
only looks at the loss: the update of a loop's last step can turn the
weights (or an optimizer slot, e.g. Adam's second moment) to NaN/inf while
that loop's loss was still finite, and Orbit then checkpoints them as the
latest.

`DivergenceGuard` is a train action that runs before Model Garden's: it
checks the loop's loss, every floating-point weight and every floating-point
optimizer variable, and raises `TrainingDivergedError` naming the step, the
loss, the last good checkpoint and what to change. Orbit checkpoints after
the train actions, so no checkpoint with NaN/inf values is saved. (The
checkpoint before the failing loop can still hold values that are finite but
already blown up by its last update, e.g. after a learning rate of 1e30: only
the next loss shows that.)

With `recovery_max_trials >= 0` the guard counts the loops Model Garden's
condition restores (a NaN loss, or a loss above `loss_upper_bound` from
`recovery_begin_steps` on) exactly as that condition does, and lets those
through while trials are left: Model Garden restores the last checkpoint, so
the state is not checked then. A non-finite loss that Model Garden would not
restore, or one past the last trial, stops the run here. A finite loss above
the bound past the last trial is left to Model Garden's own error, which
names the loss and the bound.
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
               trainer_config: cfg.TrainerConfig,
               optimizer: tf_keras.optimizers.Optimizer | None = None):
    """Initializes the guard.

    Args:
      model: The model being trained; its weights are checked.
      global_step: The trainer's step counter.
      checkpoint_manager: Names the last good checkpoint in the message.
      trainer_config: `steps_per_loop` (for the message) and Model Garden's
        recovery settings (`recovery_max_trials`, `loss_upper_bound`,
        `recovery_begin_steps`).
      optimizer: The trainer's optimizer; its floating-point variables
        (slots such as Adam's moments) are checked too.
    """
    self._model = model
    self._optimizer = optimizer
    self._global_step = global_step
    self._checkpoint_manager = checkpoint_manager
    self._config = trainer_config
    self._recoveries = 0  # Model Garden's RecoveryCondition counter.
    self._finite_flags = None  # (variables, traced check), made on first use.

  def _variables(self) -> list[tf.Variable]:
    optimizer_variables = []
    if self._optimizer is not None:
      optimizer_variables = self._optimizer.variables
      if callable(optimizer_variables):  # Keras 2's legacy optimizers.
        optimizer_variables = optimizer_variables()
    seen, variables = set(), []
    for v in [*self._model.weights, *optimizer_variables]:
      if v.dtype.is_floating and id(v) not in seen:
        seen.add(id(v))
        variables.append(v)
    return variables

  def _non_finite_variables(self) -> list[str]:
    """Names of weights and optimizer variables holding NaN/inf.

    One traced function reduces every variable to a finite flag on the
    device, so only one boolean per variable reaches the host (not the
    values themselves: a Hiera-H would move 2.7 GB per loop).
    """
    if self._finite_flags is None:
      variables = self._variables()
      self._finite_flags = (variables, tf.function(lambda: tf.stack(
          [tf.reduce_all(tf.math.is_finite(v)) for v in variables])))
    variables, flags = self._finite_flags
    return [v.name for v, ok in zip(variables, flags().numpy()) if not ok]

  def _model_garden_restores(self, loss: float) -> bool:
    """Whether Model Garden's RecoveryCondition restores after this loss.

    Counts the loop as that condition does; past the last trial it raises
    its own error (for a finite loss, left to it).
    """
    if self._config.recovery_max_trials < 0:
      return False  # Model Garden adds no recovery action.
    over_bound = (int(self._global_step.numpy()) >=
                  self._config.recovery_begin_steps and
                  loss > self._config.loss_upper_bound)
    if not (np.isnan(loss) or over_bound):
      return False
    self._recoveries += 1
    return self._recoveries <= self._config.recovery_max_trials

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
        f'{self._config.steps_per_loop}): {what}. {kept} '
        + _ADVICE.format(resume=resume))

  def __call__(self, output: Mapping[str, object]) -> None:
    """Checks one train loop's output and the state after it.

    Args:
      output: The loop's outputs; `training_loss` is its mean loss.

    Raises:
      TrainingDivergedError: on a non-finite loss that Model Garden does not
        restore from, or non-finite weights or optimizer variables.
    """
    loss = output.get('training_loss')
    loss = None if loss is None else float(loss)
    if loss is not None and self._model_garden_restores(loss):
      return  # Model Garden's RecoveryAction restores the last checkpoint.
    if loss is not None and not np.isfinite(loss):
      restored = min(self._recoveries, self._config.recovery_max_trials)
      tried = (f' after {restored} restore(s) (trainer.recovery_max_trials='
               f'{self._config.recovery_max_trials})' if restored > 0 else '')
      raise self._fail(f'the mean training loss is {loss}{tried}')
    bad = self._non_finite_variables()
    if bad:
      raise self._fail(f'{len(bad)} weights or optimizer variables hold NaN '
                       f'or inf values after the last update (first: '
                       f'{bad[0]}), the mean training loss before it was '
                       f'{loss}')
