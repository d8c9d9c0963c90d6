"""FiLM query modulation: y = x * (1 + gamma(q)) + beta(q)."""
import numpy as np
import pytest
import tensorflow as tf, tf_keras

from univision.modeling.layers import query_film


def test_film_is_a_query_chosen_per_channel_scale_and_shift():
  rng = np.random.default_rng(0)
  x = tf.constant(rng.normal(size=(2, 5, 5, 4)), tf.float32)
  queries = tf.constant(rng.normal(size=(2, 6)), tf.float32)
  layer = query_film.QueryFiLM(4)
  np.testing.assert_array_equal(layer(x, queries), x)  # Zero init.
  layer.set_weights([rng.normal(size=w.shape) for w in layer.get_weights()])
  kernel, bias = layer.get_weights()
  film = queries.numpy() @ kernel + bias
  gamma, beta = film[:, None, None, :4], film[:, None, None, 4:]
  np.testing.assert_allclose(layer(x, queries), x.numpy() * (1 + gamma) + beta,
                             rtol=1e-5, atol=1e-5)
  assert not np.allclose(layer(x, queries[::-1]), layer(x, queries))


def test_wrong_width_is_named_and_config_round_trips():
  layer = query_film.QueryFiLM(
      4, kernel_regularizer=tf_keras.regularizers.L2(1e-4), name='film_a')
  with pytest.raises(ValueError, match='film_a: built for 4 channels'):
    layer(tf.zeros([1, 2, 2, 3]), tf.zeros([1, 6]))
  clone = query_film.QueryFiLM.from_config(layer.get_config())
  assert clone.get_config() == layer.get_config()
