"""FiLM query modulation of multi-level detection features.

Query-modulated detection (arXiv 2106.10258) steers a detector by an
embedding of the user's query. Here the modulation is FiLM (Perez et al.
2018) on every decoder level: for query vector q and level l,

  y_l = x_l * (1 + gamma_l(q)) + beta_l(q),

with gamma_l, beta_l one dense layer per level, zero-initialised, so a new
modulation starts as the identity: the query-modulated detector begins as
the standard one it is trained jointly with.
"""
from typing import Any, Mapping, Sequence

import tensorflow as tf, tf_keras


@tf_keras.utils.register_keras_serializable(package='univision')
class QueryFiLM(tf_keras.layers.Layer):
  """Per-level, per-channel scale and shift of feature maps from a query."""

  def __init__(self, levels: Sequence[str], channels: int,
               kernel_regularizer: tf_keras.regularizers.Regularizer
               | None = None, **kwargs):
    """Initializes the layer.

    Args:
      levels: The feature levels to modulate (keys of the feature dict).
      channels: Channels of every level.
      kernel_regularizer: Regularizer of the dense kernels.
      **kwargs: `tf_keras.layers.Layer` arguments.
    """
    super().__init__(**kwargs)
    self._levels = [str(l) for l in levels]
    self._channels = channels
    self._kernel_regularizer = tf_keras.regularizers.get(kernel_regularizer)

  def build(self, input_shape):
    self._film = {
        level: tf_keras.layers.Dense(
            2 * self._channels, kernel_initializer='zeros',
            kernel_regularizer=self._kernel_regularizer,
            name=f'film_{level}')
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
      gamma, beta = tf.split(
          tf.cast(self._film[level](query), x.dtype)[:, None, None, :], 2,
          axis=-1)
      out[level] = x * (1.0 + gamma) + beta
    return out

  def get_config(self) -> dict[str, Any]:
    return {**super().get_config(), 'levels': self._levels,
            'channels': self._channels,
            'kernel_regularizer': tf_keras.regularizers.serialize(
                self._kernel_regularizer) if self._kernel_regularizer
                                          else None}
