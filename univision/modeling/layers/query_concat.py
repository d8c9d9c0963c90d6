"""Concat-and-project query modulation (the alternative to FiLM).

For query vector q and level l: y_l = x_l + W_l [x_l ; tile(q)], a 1x1
convolution of the features concatenated with the broadcast query, added as
a residual. W_l starts at zero, so like `QueryFiLM` the modulation starts as
the identity. Unlike FiLM (a per-channel affine map chosen by the query),
the query here enters as extra input channels that mix with the features.
"""
from typing import Any, Mapping, Sequence

import tensorflow as tf, tf_keras


@tf_keras.utils.register_keras_serializable(package='univision')
class QueryConcat(tf_keras.layers.Layer):
  """Per-level residual 1x1 conv over [features ; query]."""

  def __init__(self, levels: Sequence[str], channels: int,
               kernel_regularizer: tf_keras.regularizers.Regularizer
               | None = None, **kwargs):
    """Initializes the layer.

    Args:
      levels: The feature levels to modulate.
      channels: Channels of every level.
      kernel_regularizer: Regularizer of the 1x1 kernels.
      **kwargs: `tf_keras.layers.Layer` arguments.
    """
    super().__init__(**kwargs)
    self._levels = [str(l) for l in levels]
    self._channels = channels
    self._kernel_regularizer = tf_keras.regularizers.get(kernel_regularizer)

  def build(self, input_shape):
    self._project = {
        level: tf_keras.layers.Conv2D(
            self._channels, 1, kernel_initializer='zeros',
            kernel_regularizer=self._kernel_regularizer,
            name=f'concat_{level}')
        for level in self._levels}
    super().build(input_shape)

  def call(self, features: Mapping[str, tf.Tensor],
           query: tf.Tensor) -> dict[str, tf.Tensor]:
    """Modulates `features` ({level: [B, H, W, C]}) by `query` [B, D]."""
    missing = [l for l in self._levels if l not in features]
    if missing:
      raise ValueError(f'{self.name}: no feature level(s) {missing}; got '
                       f'{sorted(features)}.')
    out = dict(features)
    for level in self._levels:
      x = features[level]
      shape = tf.shape(x)
      tiled = tf.tile(tf.cast(query, x.dtype)[:, None, None, :],
                      [1, shape[1], shape[2], 1])
      out[level] = x + self._project[level](tf.concat([x, tiled], axis=-1))
    return out

  def get_config(self) -> dict[str, Any]:
    return {**super().get_config(), 'levels': self._levels,
            'channels': self._channels,
            'kernel_regularizer': tf_keras.regularizers.serialize(
                self._kernel_regularizer) if self._kernel_regularizer
                                          else None}
