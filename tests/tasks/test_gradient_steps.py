"""Shared gradient step: loss scaling is undone, metrics get their losses."""
import numpy as np
import tensorflow as tf, tf_keras

from univision.tasks import gradient_steps


def _step(optimizer):
  variable = tf.Variable([1.0, -2.0])
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(variable ** 2)
    scaled = gradient_steps.scaled_loss(loss, optimizer)
  gradient_steps.apply_gradients(tape, scaled, [variable], optimizer)
  return variable.numpy(), float(scaled)


def test_loss_scaled_step_equals_the_plain_step():
  plain, plain_loss = _step(tf_keras.optimizers.SGD(0.1))
  scaled, scaled_loss = _step(tf_keras.mixed_precision.LossScaleOptimizer(
      tf_keras.optimizers.SGD(0.1), dynamic=False, initial_scale=1024.0))
  np.testing.assert_allclose(plain, [0.8, -1.6])
  np.testing.assert_allclose(scaled, plain)
  assert scaled_loss == 1024.0 * plain_loss


def test_metrics_get_the_loss_of_their_name():
  metrics = [tf_keras.metrics.Mean('cls_loss'), tf_keras.metrics.Mean('x')]
  logs = gradient_steps.update_metrics(
      {'loss': 1.0}, {'cls_loss': 2.0, 'x': 3.0}, metrics)
  assert {k: float(v) for k, v in logs.items()} == {'loss': 1.0,
                                                    'cls_loss': 2.0, 'x': 3.0}
