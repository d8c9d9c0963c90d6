"""Base of the query modulations: features and a query in, features out.

Query-modulated detection (Fornoni et al., arXiv 2106.10258) steers the
detector's features by an embedding of the user's query. A modulation maps
one feature map x [B, H, W, C] and a query vector q [B, D] to new features of
x's shape. Every subclass starts as the identity (its weights are zero at
initialisation), so a query-modulated detector begins as the standard one
it is trained jointly with, exactly; subclasses say which layer they own
(`_make_layer`) and how it applies (`_modulate`).
"""
from typing import Any

import tensorflow as tf, tf_keras

from univision.modeling.layers import conv_norm


class QueryModulation(tf_keras.layers.Layer):
  """x [B, H, W, C] and a query [B, D] -> modulated x [B, H, W, C]."""

  def __init__(self, channels: int,
               kernel_regularizer: tf_keras.regularizers.Regularizer
               | None = None, **kwargs):
    """Initializes the layer.

    Args:
      channels: Channels C of the modulated features.
      kernel_regularizer: Regularizer of the layer's kernel.
      **kwargs: `tf_keras.layers.Layer` arguments.
    """
    super().__init__(**kwargs)
    self._channels = channels
    self._kernel_regularizer = tf_keras.regularizers.get(kernel_regularizer)

  def _make_layer(self) -> tf_keras.layers.Layer:
    """The zero-initialised layer that reads the query."""
    raise NotImplementedError

  def _modulate(self, x: tf.Tensor, query: tf.Tensor) -> tf.Tensor:
    """The modulated features."""
    raise NotImplementedError

  def build(self, input_shape):
    self.projection = self._make_layer()
    super().build(input_shape)

  def call(self, x: tf.Tensor, query: tf.Tensor) -> tf.Tensor:
    """Modulates `x` [B, H, W, C] by `query` [B, D]."""
    if x.shape[-1] is not None and x.shape[-1] != self._channels:
      raise ValueError(f'{self.name}: built for {self._channels} channels, '
                       f'got features of shape {x.shape}.')
    return self._modulate(x, tf.cast(query, x.dtype))

  def get_config(self) -> dict[str, Any]:
    return {**super().get_config(), 'channels': self._channels,
            'kernel_regularizer': conv_norm.serialize_regularizer(
                self._kernel_regularizer)}
