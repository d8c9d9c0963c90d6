"""Concat-and-project query modulation (the alternative to FiLM).

For query vector q and level l: y_l = x_l + W_l [x_l ; tile(q)], a 1x1
convolution of the features concatenated with the broadcast query, added as
a residual. W_l starts at zero, so like `QueryFiLM` the modulation starts as
the identity. Unlike FiLM (a per-channel affine map chosen by the query),
the query here enters as extra input channels that mix with the features.
"""
import tensorflow as tf, tf_keras

from univision.modeling.layers import query_modulation


@tf_keras.utils.register_keras_serializable(package='univision')
class QueryConcat(query_modulation.LevelQueryModulation):
  """Per-level residual 1x1 conv over [features ; query]."""

  def _level_layer(self, level: str) -> tf_keras.layers.Layer:
    return tf_keras.layers.Conv2D(
        self._channels, 1, kernel_initializer='zeros',
        kernel_regularizer=self._kernel_regularizer, name=f'concat_{level}')

  def _modulate(self, layer, x: tf.Tensor, query: tf.Tensor) -> tf.Tensor:
    shape = tf.shape(x)
    tiled = tf.tile(tf.cast(query, x.dtype)[:, None, None, :],
                    [1, shape[1], shape[2], 1])
    return x + layer(tf.concat([x, tiled], axis=-1))
