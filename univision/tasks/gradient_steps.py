"""The gradient and logging half of a training step, for our own train steps.

Model Garden's tasks inline this in every `train_step`; the univision tasks
that write their own step (patched detection: a chosen set of variables;
query detection: a joint loss) share it here: the loss is divided across
replicas and loss-scaled under mixed precision, the gradients unscaled and
applied, and Model Garden's loss metrics updated.
"""
from typing import Any, Mapping, Sequence

import tensorflow as tf, tf_keras


def scaled_loss(loss: tf.Tensor,
                optimizer: tf_keras.optimizers.Optimizer) -> tf.Tensor:
  """The loss to differentiate; compute it inside the gradient tape."""
  scaled = loss / tf.distribute.get_strategy().num_replicas_in_sync
  if isinstance(optimizer, tf_keras.mixed_precision.LossScaleOptimizer):
    scaled = optimizer.get_scaled_loss(scaled)
  return scaled


def gradients(tape: tf.GradientTape, scaled: tf.Tensor,
              variables: Sequence[tf.Variable],
              optimizer: tf_keras.optimizers.Optimizer) -> list[tf.Tensor]:
  """The gradients of the loss behind `scaled` (from `scaled_loss`)."""
  grads = tape.gradient(scaled, variables)
  if isinstance(optimizer, tf_keras.mixed_precision.LossScaleOptimizer):
    grads = optimizer.get_unscaled_gradients(grads)
  return grads


def apply_gradients(tape: tf.GradientTape, scaled: tf.Tensor,
                    variables: Sequence[tf.Variable],
                    optimizer: tf_keras.optimizers.Optimizer) -> None:
  """Differentiates `scaled` (from `scaled_loss`) and updates `variables`."""
  optimizer.apply_gradients(zip(
      gradients(tape, scaled, variables, optimizer), variables))


def update_metrics(logs: dict[str, Any], losses: Mapping[str, tf.Tensor],
                   metrics: Sequence[Any] | None) -> dict[str, Any]:
  """Feeds each metric its loss (by metric name) and adds it to `logs`."""
  for metric in metrics or []:
    metric.update_state(losses[metric.name])
    logs[metric.name] = metric.result()
  return logs
