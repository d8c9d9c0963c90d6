"""Concat-and-project query modulation.

For features x and query vector q: y = x + W [x ; tile(q)], a 1x1
convolution of the features concatenated with the broadcast query, added as
a residual. W starts at zero, so the modulation starts as the identity.
Unlike FiLM (a per-channel affine map chosen by the query) the query enters
as extra input channels that mix with the features.
"""
import tensorflow as tf, tf_keras

from univision.modeling.layers import query_modulation


@tf_keras.utils.register_keras_serializable(package='univision')
class QueryConcat(query_modulation.QueryModulation):
  """Residual 1x1 conv over [features ; query]."""

  def _make_layer(self) -> tf_keras.layers.Layer:
    return tf_keras.layers.Conv2D(
        self._channels, 1, kernel_initializer='zeros',
        kernel_regularizer=self._kernel_regularizer, name='concat')

  def _modulate(self, x: tf.Tensor, query: tf.Tensor) -> tf.Tensor:
    shape = tf.shape(x)
    tiled = tf.tile(query[:, None, None, :], [1, shape[1], shape[2], 1])
    return x + self.projection(tf.concat([x, tiled], axis=-1))
