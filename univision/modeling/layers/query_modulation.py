"""Base of the query modulations of multi-level detection features.

A modulation holds one small layer per feature level and maps each level's
features and the query vector to new features; subclasses say which layer
(`_level_layer`) and how it applies (`_modulate`). Levels not named pass
through unchanged.
"""
from typing import Any, Mapping, Sequence

import tensorflow as tf, tf_keras

from univision.modeling.layers import conv_norm


class LevelQueryModulation(tf_keras.layers.Layer):
  """{level: features} and a query [B, D] -> modulated {level: features}."""

  def __init__(self, levels: Sequence[str], channels: int,
               kernel_regularizer: tf_keras.regularizers.Regularizer
               | None = None, **kwargs):
    """Initializes the layer.

    Args:
      levels: The feature levels to modulate (keys of the feature dict).
      channels: Channels of every level.
      kernel_regularizer: Regularizer of the per-level kernels.
      **kwargs: `tf_keras.layers.Layer` arguments.
    """
    super().__init__(**kwargs)
    self._levels = [str(l) for l in levels]
    self._channels = channels
    self._kernel_regularizer = tf_keras.regularizers.get(kernel_regularizer)

  def _level_layer(self, level: str) -> tf_keras.layers.Layer:
    """The zero-initialised layer of one level."""
    raise NotImplementedError

  def _modulate(self, layer: tf_keras.layers.Layer, x: tf.Tensor,
                query: tf.Tensor) -> tf.Tensor:
    """One level's modulated features."""
    raise NotImplementedError

  def build(self, input_shape):
    self._per_level = {level: self._level_layer(level)
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
      out[level] = self._modulate(self._per_level[level], features[level],
                                  query)
    return out

  def get_config(self) -> dict[str, Any]:
    return {**super().get_config(), 'levels': self._levels,
            'channels': self._channels,
            'kernel_regularizer': conv_norm.serialize_regularizer(
                self._kernel_regularizer)}
