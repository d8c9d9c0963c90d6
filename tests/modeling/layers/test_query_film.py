"""FiLM query modulation: identity at start, query-dependent once trained."""
import numpy as np
import pytest
import tensorflow as tf, tf_keras

from univision.modeling.layers import query_film


def _features(seed=0):
  rng = np.random.default_rng(seed)
  return {'3': tf.constant(rng.normal(size=(2, 8, 8, 4)), tf.float32),
          '4': tf.constant(rng.normal(size=(2, 4, 4, 4)), tf.float32)}


def test_zero_modulation_is_the_identity():
  layer = query_film.QueryFiLM(['3', '4'], 4)
  features = _features()
  query = tf.constant(np.random.default_rng(1).normal(size=(2, 6)),
                      tf.float32)
  out = layer(features, query)
  for level in features:
    np.testing.assert_array_equal(out[level], features[level])


def test_changing_the_query_changes_the_features():
  layer = query_film.QueryFiLM(['3', '4'], 4)
  features = _features()
  queries = tf.eye(2, 6)
  layer(features, queries)
  rng = np.random.default_rng(2)
  layer.set_weights([rng.normal(size=w.shape) for w in layer.get_weights()])
  out = layer(features, queries)
  swapped = layer(features, queries[::-1])
  for level in features:
    assert not np.allclose(out[level], swapped[level])
  # Per-channel scale and shift: y = x * (1 + gamma) + beta.
  kernel, bias = [w.numpy() for w in layer._per_level['3'].weights]  # pylint: disable=protected-access
  film = queries.numpy() @ kernel + bias
  gamma, beta = film[:, :4], film[:, 4:]
  want = features['3'].numpy() * (1 + gamma[:, None, None]) + beta[:, None,
                                                                   None]
  np.testing.assert_allclose(out['3'], want, rtol=1e-5, atol=1e-5)


def test_only_named_levels_are_modulated_and_missing_ones_named():
  layer = query_film.QueryFiLM(['3'], 4)
  features = _features()
  layer(features, tf.ones([2, 3]))
  layer.set_weights([w + 1.0 for w in layer.get_weights()])
  out = layer(features, tf.ones([2, 3]))
  np.testing.assert_array_equal(out['4'], features['4'])
  with pytest.raises(ValueError, match=r"no feature level\(s\) \['3'\]"):
    layer({'4': features['4']}, tf.ones([2, 3]))


def test_config_round_trip():
  layer = query_film.QueryFiLM(['3', '4'], 4,
                               kernel_regularizer=tf_keras.regularizers.L2(1e-4))
  clone = query_film.QueryFiLM.from_config(layer.get_config())
  assert clone.get_config() == layer.get_config()
