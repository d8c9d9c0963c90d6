"""Fused inverted bottleneck (FusedIB): the early-stage block of MNv4-M/L.

Tan & Le, "EfficientNetV2", 2021 (Fused-MBConv); MobileNetV4 uses it as the
first stage after the stem. A k x k full conv expands (and strides), a 1x1
conv projects; the residual is added when shapes allow.
"""
from typing import Any

import tensorflow as tf, tf_keras
from official.vision.modeling.layers import nn_layers

from univision.modeling.layers import conv_norm
from univision.modeling.layers import residual


@tf_keras.utils.register_keras_serializable(package='univision')
class FusedInvertedBottleneck(conv_norm.ExpansionModulated,
                              tf_keras.layers.Layer):
  """k x k expand conv + BN + act, then 1x1 project conv + BN, [+ residual]."""

  def __init__(self,
               filters: int,
               expand_ratio: float,
               kernel_size: int = 3,
               strides: int = 1,
               activation: str = 'relu',
               use_residual: bool = True,
               stochastic_depth_drop_rate: float = 0.0,
               divisible_by: int = 8,
               padding: str = 'same',
               kernel_initializer: str = 'VarianceScaling',
               kernel_regularizer: tf_keras.regularizers.Regularizer
               | None = None,
               use_sync_bn: bool = False,
               norm_momentum: float = 0.99,
               norm_epsilon: float = 0.001,
               antialias: str = '',
               **kwargs):
    """Initializes the block.

    Args:
      filters: An `int` of output channels.
      expand_ratio: A `float`; the expanded width is
        `make_divisible(input_channels * expand_ratio, divisible_by)`.
      kernel_size: An `int` kernel size of the expand conv.
      strides: An `int` stride of the expand conv.
      activation: A `str` activation after the expand conv.
      use_residual: A `bool`; the residual is added only if this is True,
        `strides == 1` and input and output channels match.
      stochastic_depth_drop_rate: A `float` drop rate of the residual branch.
      divisible_by: An `int` the expanded width is rounded to.
      padding: A `str`, `'same'` or `'symmetric'` (see `conv_norm`).
      kernel_initializer: A `str` kernel initializer name.
      kernel_regularizer: A `tf_keras.regularizers.Regularizer` or None.
      use_sync_bn: A `bool`, whether to use synchronized batch norm.
      norm_momentum: A `float` batch norm momentum.
      norm_epsilon: A `float` batch norm epsilon.
      antialias: '' or an anti-aliased downsampling kind for the strided
        conv (`conv_norm.ConvNormAct`).
      **kwargs: Keyword arguments for `tf_keras.layers.Layer`.
    """
    super().__init__(**kwargs)
    self._filters = filters
    self._expand_ratio = expand_ratio
    self._kernel_size = kernel_size
    self._strides = strides
    self._activation = activation
    self._use_residual = use_residual
    self._stochastic_depth_drop_rate = stochastic_depth_drop_rate
    self._divisible_by = divisible_by
    self._conv_kwargs = conv_norm.conv_norm_kwargs(
        padding, kernel_initializer, kernel_regularizer, use_sync_bn,
        norm_momentum, norm_epsilon, antialias)

  def build(self, input_shape):
    in_filters = int(input_shape[-1])
    expanded = nn_layers.make_divisible(in_filters * self._expand_ratio,
                                        self._divisible_by)
    self.expand = conv_norm.ConvNormAct(
        expanded, self._kernel_size, strides=self._strides,
        activation=self._activation, **self._conv_kwargs)
    self.project = conv_norm.ConvNormAct(
        self._filters, 1, activation=None, **self._conv_kwargs)
    self._has_residual = residual.has_residual(
        self._use_residual, self._strides, in_filters, self._filters)
    self.drop_path = residual.optional_drop_path(
        self._has_residual, self._stochastic_depth_drop_rate)
    super().build(input_shape)

  def call(self, inputs, training=None, modulate=None):
    """The block; `modulate`: see `conv_norm.ExpansionModulated`."""
    x = self.expand(inputs, training=training, modulate=modulate)
    x = self.project(x, training=training)
    return residual.block_output(x, inputs, self._has_residual,
                                 drop_path=self.drop_path, training=training)

  def get_config(self) -> dict[str, Any]:
    config = {
        'filters': self._filters,
        'expand_ratio': self._expand_ratio,
        'kernel_size': self._kernel_size,
        'strides': self._strides,
        'activation': self._activation,
        'use_residual': self._use_residual,
        'stochastic_depth_drop_rate': self._stochastic_depth_drop_rate,
        'divisible_by': self._divisible_by,
        **conv_norm.serialize_conv_norm_kwargs(self._conv_kwargs),
    }
    return {**super().get_config(), **config}
