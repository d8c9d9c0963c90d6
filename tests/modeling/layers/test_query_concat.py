"""Concat-and-project query modulation: y = x + W [x ; tile(q)]."""
import numpy as np
import tensorflow as tf, tf_keras

from univision.modeling.layers import query_concat


def test_zero_init_is_identity_and_weights_make_it_a_residual_projection():
  rng = np.random.default_rng(0)
  x = tf.constant(rng.normal(size=(2, 4, 4, 4)), tf.float32)
  query = tf.eye(2, 3)
  layer = query_concat.QueryConcat(4)
  np.testing.assert_array_equal(layer(x, query), x)
  layer.set_weights([rng.normal(size=w.shape) for w in layer.get_weights()])
  kernel, bias = layer.get_weights()
  tiled = np.broadcast_to(query.numpy()[:, None, None, :], (2, 4, 4, 3))
  want = x.numpy() + np.concatenate([x.numpy(), tiled], -1) @ kernel[0, 0] + (
      bias)
  np.testing.assert_allclose(layer(x, query), want, rtol=1e-5, atol=1e-5)
  assert not np.allclose(layer(x, query[::-1]), layer(x, query))


def test_config_round_trip():
  layer = query_concat.QueryConcat(
      4, kernel_regularizer=tf_keras.regularizers.L2(1e-4))
  clone = query_concat.QueryConcat.from_config(layer.get_config())
  assert clone.get_config() == layer.get_config()
