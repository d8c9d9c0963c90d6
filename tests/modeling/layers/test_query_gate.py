"""Multiplicative query gate: y = x * 2 sigmoid(W q + b)."""
import numpy as np
import tensorflow as tf

from univision.modeling.layers import query_gate


def test_gate_starts_at_one_and_scales_channels_within_0_and_2():
  rng = np.random.default_rng(0)
  x = tf.constant(rng.normal(size=(2, 3, 3, 4)), tf.float32)
  queries = tf.constant(rng.normal(size=(2, 5)), tf.float32)
  layer = query_gate.QueryGate(4)
  np.testing.assert_array_equal(layer(x, queries), x)  # Zero init.
  layer.set_weights([3 * rng.normal(size=w.shape)
                     for w in layer.get_weights()])
  kernel, bias = layer.get_weights()
  gate = 2 / (1 + np.exp(-(queries.numpy() @ kernel + bias)))
  out = layer(x, queries).numpy()
  np.testing.assert_allclose(out, x.numpy() * gate[:, None, None, :],
                             rtol=1e-5, atol=1e-6)
  ratio = out / x.numpy()
  assert (ratio > 0).all() and (ratio < 2).all()
  clone = query_gate.QueryGate.from_config(layer.get_config())
  assert clone.get_config() == layer.get_config()
