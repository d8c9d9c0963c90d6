"""Multiplicative query gate: the query turns channels up or down.

For features x and query vector q: y = x * 2 sigmoid(W q + b), W and b
zero-initialised, so the gate starts at exactly 1 (the identity). Unlike
FiLM it cannot shift a channel or flip its sign, only scale it within
(0, 2): a gentler, bounded steer.
"""
import tensorflow as tf, tf_keras

from univision.modeling.layers import query_modulation


@tf_keras.utils.register_keras_serializable(package='univision')
class QueryGate(query_modulation.QueryModulation):
  """Per-channel gate in (0, 2) of a feature map from a query."""

  def _make_layer(self) -> tf_keras.layers.Layer:
    return tf_keras.layers.Dense(
        self._channels, kernel_initializer='zeros',
        kernel_regularizer=self._kernel_regularizer, name='gate')

  def _modulate(self, x: tf.Tensor, query: tf.Tensor) -> tf.Tensor:
    return x * (2.0 * tf.sigmoid(self.projection(query)[:, None, None, :]))
