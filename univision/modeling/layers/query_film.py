"""FiLM query modulation of multi-level detection features.

Query-modulated detection (arXiv 2106.10258) steers a detector by an
embedding of the user's query. Here the modulation is FiLM (Perez et al.
2018) on every decoder level: for query vector q and level l,

  y_l = x_l * (1 + gamma_l(q)) + beta_l(q),

with gamma_l, beta_l one dense layer per level, zero-initialised, so a new
modulation starts as the identity: the query-modulated detector begins as
the standard one it is trained jointly with.
"""
import tensorflow as tf, tf_keras

from univision.modeling.layers import query_modulation


@tf_keras.utils.register_keras_serializable(package='univision')
class QueryFiLM(query_modulation.LevelQueryModulation):
  """Per-level, per-channel scale and shift of feature maps from a query."""

  def _level_layer(self, level: str) -> tf_keras.layers.Layer:
    return tf_keras.layers.Dense(
        2 * self._channels, kernel_initializer='zeros',
        kernel_regularizer=self._kernel_regularizer, name=f'film_{level}')

  def _modulate(self, layer, x: tf.Tensor, query: tf.Tensor) -> tf.Tensor:
    gamma, beta = tf.split(
        tf.cast(layer(query), x.dtype)[:, None, None, :], 2, axis=-1)
    return x * (1.0 + gamma) + beta
