"""Universal Inverted Bottleneck (UIB), the search block of MobileNetV4.

Qin et al., "MobileNetV4: Universal Models for the Mobile Ecosystem",
ECCV 2024 (arXiv 2404.10518), Sec. 3.2 / Fig. 4.

One block, four instantiations chosen by its two optional depthwise convs:

| variant  | start DW | middle DW |
|----------|----------|-----------|
| IB       | -        | k x k     |
| ConvNext | k x k    | -         |
| ExtraDW  | k x k    | k x k     |
| FFN      | -        | -         |

Data flow: [start DW + BN] -> 1x1 expand + BN + act -> [middle DW + BN + act]
-> 1x1 project + BN -> [layer scale] -> [stochastic depth] + residual.
"""
from typing import Any

import tensorflow as tf, tf_keras
from official.vision.modeling.layers import nn_layers

from univision.modeling.layers import conv_norm
from univision.modeling.layers import residual


def uib_variant(start_dw_kernel_size: int, middle_dw_kernel_size: int) -> str:
  """The paper's name of the UIB instantiation with these DW kernels."""
  return {(True, True): 'ExtraDW', (False, True): 'IB',
          (True, False): 'ConvNext', (False, False): 'FFN'}[
              (bool(start_dw_kernel_size), bool(middle_dw_kernel_size))]


@tf_keras.utils.register_keras_serializable(package='univision')
class UniversalInvertedBottleneck(conv_norm.ExpansionModulated,
                                  tf_keras.layers.Layer):
  """The UIB block: IB, ConvNext, ExtraDW or FFN by its DW kernel sizes."""

  def __init__(self,
               filters: int,
               expand_ratio: float,
               strides: int = 1,
               start_dw_kernel_size: int = 0,
               middle_dw_kernel_size: int = 3,
               middle_dw_downsample: bool = True,
               activation: str = 'relu',
               use_residual: bool = True,
               layer_scale_init_value: float | None = None,
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
      strides: An `int` stride, carried by the middle DW conv if it exists
        and `middle_dw_downsample` is True (or there is no start DW conv),
        else by the start DW conv.
      start_dw_kernel_size: An `int` kernel size of the start DW conv; 0 means
        no start DW conv.
      middle_dw_kernel_size: An `int` kernel size of the middle DW conv; 0
        means no middle DW conv.
      middle_dw_downsample: A `bool`, whether the middle (rather than the
        start) DW conv carries the stride.
      activation: A `str` activation after the expand and middle DW convs.
      use_residual: A `bool`; the residual is added only if this is True,
        `strides == 1` and input and output channels match.
      layer_scale_init_value: A `float` initial LayerScale value, or None (or
        0) for no layer scale.
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

    Raises:
      ValueError: if `strides > 1` and the block has no DW conv (FFN).
    """
    super().__init__(**kwargs)
    if strides > 1 and not (start_dw_kernel_size or middle_dw_kernel_size):
      raise ValueError(
          f'{self.name}: an FFN UIB (no depthwise conv) cannot carry '
          f'strides={strides}.')
    self._filters = filters
    self._expand_ratio = expand_ratio
    self._strides = strides
    self._start_dw_kernel_size = start_dw_kernel_size
    self._middle_dw_kernel_size = middle_dw_kernel_size
    self._middle_dw_downsample = middle_dw_downsample
    self._activation = activation
    self._use_residual = use_residual
    self._layer_scale_init_value = layer_scale_init_value
    self._stochastic_depth_drop_rate = stochastic_depth_drop_rate
    self._divisible_by = divisible_by
    self._conv_kwargs = conv_norm.conv_norm_kwargs(
        padding, kernel_initializer, kernel_regularizer, use_sync_bn,
        norm_momentum, norm_epsilon, antialias)

  @property
  def variant(self) -> str:
    """'IB', 'ConvNext', 'ExtraDW' or 'FFN'."""
    return uib_variant(self._start_dw_kernel_size, self._middle_dw_kernel_size)

  def _stride_on_middle(self) -> bool:
    if not self._middle_dw_kernel_size:
      return False
    return self._middle_dw_downsample or not self._start_dw_kernel_size

  def build(self, input_shape):
    in_filters = int(input_shape[-1])
    expanded = nn_layers.make_divisible(in_filters * self._expand_ratio,
                                        self._divisible_by)
    stride_on_middle = self._stride_on_middle()
    self.start_dw = None
    if self._start_dw_kernel_size:
      self.start_dw = conv_norm.ConvNormAct(
          None, self._start_dw_kernel_size,
          strides=1 if stride_on_middle else self._strides,
          depthwise=True, activation=None, **self._conv_kwargs)
    self.expand = conv_norm.ConvNormAct(
        expanded, 1, activation=self._activation, **self._conv_kwargs)
    self.middle_dw = None
    if self._middle_dw_kernel_size:
      self.middle_dw = conv_norm.ConvNormAct(
          None, self._middle_dw_kernel_size,
          strides=self._strides if stride_on_middle else 1,
          depthwise=True, activation=self._activation, **self._conv_kwargs)
    self.project = conv_norm.ConvNormAct(
        self._filters, 1, activation=None, **self._conv_kwargs)
    self.layer_scale = residual.optional_layer_scale(
        self._layer_scale_init_value)
    self._has_residual = residual.has_residual(
        self._use_residual, self._strides, in_filters, self._filters)
    self.drop_path = residual.optional_drop_path(
        self._has_residual, self._stochastic_depth_drop_rate)
    super().build(input_shape)

  def call(self, inputs, training=None, modulate=None):
    """The block; `modulate`: see `conv_norm.ExpansionModulated`."""
    x = inputs
    if self.start_dw is not None:
      x = self.start_dw(x, training=training)
    x = self.expand(x, training=training, modulate=modulate)
    if self.middle_dw is not None:
      x = self.middle_dw(x, training=training)
    x = self.project(x, training=training)
    return residual.block_output(x, inputs, self._has_residual,
                                 self.layer_scale, self.drop_path, training)

  def get_config(self) -> dict[str, Any]:
    config = {
        'filters': self._filters,
        'expand_ratio': self._expand_ratio,
        'strides': self._strides,
        'start_dw_kernel_size': self._start_dw_kernel_size,
        'middle_dw_kernel_size': self._middle_dw_kernel_size,
        'middle_dw_downsample': self._middle_dw_downsample,
        'activation': self._activation,
        'use_residual': self._use_residual,
        'layer_scale_init_value': self._layer_scale_init_value,
        'stochastic_depth_drop_rate': self._stochastic_depth_drop_rate,
        'divisible_by': self._divisible_by,
        **conv_norm.serialize_conv_norm_kwargs(self._conv_kwargs),
    }
    return {**super().get_config(), **config}
