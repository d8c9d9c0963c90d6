"""Tests for SpotPatch's gates: relaxation, exact mixing, penalty, schedule."""
import numpy as np
import pytest
import tensorflow as tf, tf_keras

from univision.modeling.layers import spot_gate


def test_straight_through_is_hard_forward_and_soft_backward():
  logit = tf.Variable(0.3)
  with tf.GradientTape() as tape:
    soft = tf.sigmoid(logit * 2.0)
    hard = spot_gate.straight_through(soft)
  assert float(hard) == 1.0
  grad = tape.gradient(hard, logit)
  s = float(tf.sigmoid(0.6))
  assert float(grad) == pytest.approx(2.0 * s * (1.0 - s), rel=1e-5)


def test_gate_gradient_flows_through_the_sample():
  gate = spot_gate.SpotGate(initial_logit=0.5, initial_temperature=0.5)
  copy, shared = tf.constant(3.0), tf.constant(1.0)
  with tf.GradientTape() as tape:
    g = gate.value(training=True, uniform=tf.constant(0.5))  # Noise 0.
    out = spot_gate.mix(shared, copy, g)
  assert float(g) == 1.0 and float(out) == 3.0
  grad = float(tape.gradient(out, gate.logit))
  # d out / d g = copy - shared = 2; d soft / d logit = s (1 - s) / T.
  s = float(tf.sigmoid(0.5 / 0.5))
  assert grad == pytest.approx(2.0 * s * (1.0 - s) / 0.5, rel=1e-5)


def test_samples_follow_the_gate_probability():
  gate = spot_gate.SpotGate(initial_logit=np.log(3.0))  # P(g = 1) = 0.75.
  uniform = tf.random.stateless_uniform([4000], seed=[1, 2])
  values = [float(gate.value(training=True, uniform=u)) for u in uniform]
  assert set(values) == {0.0, 1.0}
  assert np.mean(values) == pytest.approx(0.75, abs=0.03)


@pytest.mark.parametrize('hard, expected', [(0.0, 'shared'), (1.0, 'copy')])
def test_a_hard_gate_gives_exactly_one_side(hard, expected):
  rng = np.random.default_rng(0)
  shared = tf.constant(rng.normal(size=(3, 3, 8, 16)), tf.float32)
  copy = tf.constant(rng.normal(size=(3, 3, 8, 16)) * 1e3, tf.float32)
  gate = spot_gate.SpotGate(initial_logit=5.0, hard_value=hard)
  for training in (True, False):
    mixed = spot_gate.mix(shared, copy, gate.value(training=training))
    np.testing.assert_array_equal(
        mixed, {'shared': shared, 'copy': copy}[expected])


def test_inference_takes_the_likelier_side_and_harden_fixes_it():
  gate = spot_gate.SpotGate(initial_logit=-0.2)
  assert float(gate.value(training=False)) == 0.0
  gate.logit.assign(0.4)
  assert float(gate.value(training=False)) == 1.0
  assert gate.harden() == 1.0
  gate.logit.assign(-3.0)  # A hardened gate no longer follows its logit.
  assert float(gate.value(training=True, uniform=tf.constant(0.9))) == 1.0


def test_size_penalty_is_the_expected_share_and_pushes_gates_to_the_base():
  gates = [spot_gate.SpotGate(initial_logit=0.0),
           spot_gate.SpotGate(initial_logit=np.log(3.0))]
  with tf.GradientTape() as tape:
    penalty = spot_gate.size_penalty(gates, [100, 300], 1000)
  assert float(penalty) == pytest.approx(0.5 * 0.1 + 0.75 * 0.3, rel=1e-6)
  grads = tape.gradient(penalty, [g.logit for g in gates])
  # Gradient descent lowers every logit: it moves the gates toward the base.
  assert all(float(g) > 0 for g in grads)
  optimizer = tf_keras.optimizers.SGD(1.0)
  optimizer.apply_gradients(zip(grads, [g.logit for g in gates]))
  assert float(gates[0].logit) < 0.0 < float(gates[1].logit) < np.log(3.0)
  with pytest.raises(ValueError, match='2 gates, 1 sizes'):
    spot_gate.size_penalty(gates, [1], 10)


def test_temperature_anneals_exponentially():
  values = [float(spot_gate.temperature_at(s, 1.0, 0.01, 100))
            for s in (0, 50, 100, 200)]
  np.testing.assert_allclose(values, [1.0, 0.1, 0.01, 0.01], rtol=1e-5)
  with pytest.raises(ValueError, match='start, end > 0'):
    spot_gate.temperature_at(0, 0.0, 0.1, 10)


def test_config_round_trip_and_bad_values():
  gate = spot_gate.SpotGate(initial_logit=1.5, initial_temperature=2.0,
                            hard_value=0.0, name='gate_a')
  config = gate.get_config()
  assert spot_gate.SpotGate.from_config(config).get_config() == config
  with pytest.raises(ValueError, match='hard_value must be None, 0 or 1'):
    spot_gate.SpotGate(hard_value=0.5)
  with pytest.raises(ValueError, match='initial_temperature must be > 0'):
    spot_gate.SpotGate(initial_temperature=0.0)


def test_calling_the_gate_takes_a_python_or_tensor_training_flag():
  gate = spot_gate.SpotGate(initial_logit=-0.5)
  assert float(gate(None)) == 0.0  # Inference: the likelier side.

  @tf.function
  def gradient(training):
    with tf.GradientTape() as tape:
      value = gate(None, training=training)
    return tape.gradient(value, gate.logit)

  # A training sample passes a straight-through gradient to the logit; the
  # inference threshold passes none.
  assert float(gradient(tf.constant(True))) > 0.0
  assert float(gradient(tf.constant(False))) == 0.0
