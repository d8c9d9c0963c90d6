"""FiLM query modulation: a per-channel scale and shift chosen by the query.

FiLM (Perez et al. 2018): for features x and query vector q,

  y = x * (1 + gamma(q)) + beta(q),

gamma and beta from one dense layer on q, zero-initialised (the identity at
start). The default modulation of `modeling.detectors.query_retinanet`.
"""
import tensorflow as tf, tf_keras

from univision.modeling.layers import query_modulation


@tf_keras.utils.register_keras_serializable(package='univision')
class QueryFiLM(query_modulation.QueryModulation):
  """Per-channel scale and shift of a feature map from a query."""

  def _make_layer(self) -> tf_keras.layers.Layer:
    return tf_keras.layers.Dense(
        2 * self._channels, kernel_initializer='zeros',
        kernel_regularizer=self._kernel_regularizer, name='film')

  def _modulate(self, x: tf.Tensor, query: tf.Tensor) -> tf.Tensor:
    gamma, beta = tf.split(self.projection(query)[:, None, None, :], 2,
                           axis=-1)
    return x * (1.0 + gamma) + beta
