"""Concat-and-project query modulation: identity at start, then query-driven."""
import numpy as np
import pytest
import tensorflow as tf, tf_keras

from univision.modeling.layers import query_concat


def _features():
  rng = np.random.default_rng(0)
  return {'3': tf.constant(rng.normal(size=(2, 8, 8, 4)), tf.float32),
          '4': tf.constant(rng.normal(size=(2, 4, 4, 4)), tf.float32)}


def test_zero_init_is_identity_and_weights_make_it_a_residual_projection():
  layer = query_concat.QueryConcat(['3', '4'], 4)
  features, query = _features(), tf.eye(2, 3)
  out = layer(features, query)
  for level in features:
    np.testing.assert_array_equal(out[level], features[level])
  rng = np.random.default_rng(1)
  layer.set_weights([rng.normal(size=w.shape) for w in layer.get_weights()])
  out = layer(features, query)
  kernel, bias = [w.numpy() for w in layer._per_level['4'].weights]  # pylint: disable=protected-access
  x = features['4'].numpy()
  tiled = np.broadcast_to(query.numpy()[:, None, None, :], (2, 4, 4, 3))
  want = x + np.concatenate([x, tiled], -1) @ kernel[0, 0] + bias
  np.testing.assert_allclose(out['4'], want, rtol=1e-5, atol=1e-5)
  assert not np.allclose(layer(features, query[::-1])['3'], out['3'])


def test_missing_level_named_and_config_round_trip():
  layer = query_concat.QueryConcat(
      ['5'], 4, kernel_regularizer=tf_keras.regularizers.L2(1e-4))
  with pytest.raises(ValueError, match=r"no feature level\(s\) \['5'\]"):
    layer(_features(), tf.ones([2, 3]))
  clone = query_concat.QueryConcat.from_config(layer.get_config())
  assert clone.get_config() == layer.get_config()
