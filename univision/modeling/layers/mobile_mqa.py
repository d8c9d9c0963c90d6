"""Mobile MQA: multi-query attention with K/V downsampling, for MNv4 hybrids.

Qin et al., "MobileNetV4", ECCV 2024, Sec. 4; Shazeer, "Fast Transformer
Decoding: One Write-Head is All You Need" (multi-query attention), 2019.

Queries have `num_heads` heads; keys and values have ONE shared head, and may
be spatially downsampled by a strided depthwise conv + BN (`kv_strides`),
which is what makes the block cheap on mobile accelerators. All projections
are 1x1 convs without bias. Spatial sizes are read at run time, so the layer
works on non-square maps (detection inputs) and on unknown sizes.
"""
from typing import Any

import tensorflow as tf, tf_keras

from univision.modeling.layers import conv_norm
from univision.modeling.layers import residual


@tf_keras.utils.register_keras_serializable(package='univision')
class MobileMultiQueryAttention(tf_keras.layers.Layer):
  """Multi-query attention over a feature map, with optional K/V downsampling.

  Channel layout: the query projection's output channel `h * key_dim + k` is
  head `h`, dimension `k`; the attention output concatenates heads the same
  way (`h * value_dim + v`) before the output projection.
  """

  def __init__(self,
               num_heads: int,
               key_dim: int,
               value_dim: int | None = None,
               kv_strides: int = 1,
               dw_kernel_size: int = 3,
               dropout: float = 0.0,
               padding: str = 'same',
               kernel_initializer: str = 'VarianceScaling',
               kernel_regularizer: tf_keras.regularizers.Regularizer
               | None = None,
               use_sync_bn: bool = False,
               norm_momentum: float = 0.99,
               norm_epsilon: float = 0.001,
               **kwargs):
    """Initializes the layer.

    Args:
      num_heads: An `int` number of query heads.
      key_dim: An `int` size of each query head and of the shared key head.
      value_dim: An `int` size of the shared value head; defaults to
        `key_dim`.
      kv_strides: An `int` stride of the depthwise conv that downsamples the
        keys and values; 1 means no downsampling conv.
      dw_kernel_size: An `int` kernel size of that downsampling conv.
      dropout: A `float` dropout rate on the attention probabilities.
      padding: A `str`, `'same'` or `'symmetric'` (see `conv_norm`).
      kernel_initializer: A `str` kernel initializer name.
      kernel_regularizer: A `tf_keras.regularizers.Regularizer` or None.
      use_sync_bn: A `bool`, whether to use synchronized batch norm.
      norm_momentum: A `float` batch norm momentum.
      norm_epsilon: A `float` batch norm epsilon.
      **kwargs: Keyword arguments for `tf_keras.layers.Layer`.
    """
    super().__init__(**kwargs)
    if kv_strides < 1:
      raise ValueError(f'{self.name}: kv_strides must be >= 1, got '
                       f'{kv_strides}.')
    self._num_heads = num_heads
    self._key_dim = key_dim
    self._value_dim = value_dim or key_dim
    self._kv_strides = kv_strides
    self._dw_kernel_size = dw_kernel_size
    self._dropout = dropout
    self._conv_kwargs = conv_norm.conv_norm_kwargs(
        padding, kernel_initializer, kernel_regularizer, use_sync_bn,
        norm_momentum, norm_epsilon)

  def _pointwise(self, filters: int) -> tf_keras.layers.Conv2D:
    return tf_keras.layers.Conv2D(
        filters, 1, use_bias=False,
        kernel_initializer=self._conv_kwargs['kernel_initializer'],
        kernel_regularizer=self._conv_kwargs['kernel_regularizer'])

  def _downsample(self) -> conv_norm.ConvNormAct | None:
    if self._kv_strides == 1:
      return None
    return conv_norm.ConvNormAct(
        None, self._dw_kernel_size, strides=self._kv_strides,
        depthwise=True, activation=None, **self._conv_kwargs)

  def build(self, input_shape):
    channels = int(input_shape[-1])
    self.query_proj = self._pointwise(self._num_heads * self._key_dim)
    self.key_down = self._downsample()
    self.key_proj = self._pointwise(self._key_dim)
    self.value_down = self._downsample()
    self.value_proj = self._pointwise(self._value_dim)
    self.output_proj = self._pointwise(channels)
    self.attention_dropout = tf_keras.layers.Dropout(self._dropout)
    super().build(input_shape)

  def call(self, inputs, training=None):
    shape = tf.shape(inputs)
    batch, height, width = shape[0], shape[1], shape[2]
    query = tf.reshape(self.query_proj(inputs),
                       [batch, height * width, self._num_heads, self._key_dim])
    key_in, value_in = inputs, inputs
    if self.key_down is not None:
      key_in = self.key_down(inputs, training=training)
      value_in = self.value_down(inputs, training=training)
    key = tf.reshape(self.key_proj(key_in), [batch, -1, self._key_dim])
    value = tf.reshape(self.value_proj(value_in), [batch, -1, self._value_dim])
    # l: query positions, h: heads, m: (downsampled) key positions.
    logits = tf.einsum('blhk,bmk->blhm', query, key)
    logits *= tf.cast(self._key_dim, logits.dtype) ** -0.5
    probs = self.attention_dropout(tf.nn.softmax(logits, axis=-1),
                                   training=training)
    heads = tf.einsum('blhm,bmv->blhv', probs, value)
    heads = tf.reshape(heads, [batch, height, width,
                               self._num_heads * self._value_dim])
    return self.output_proj(heads)

  def get_config(self) -> dict[str, Any]:
    config = {
        'num_heads': self._num_heads,
        'key_dim': self._key_dim,
        'value_dim': self._value_dim,
        'kv_strides': self._kv_strides,
        'dw_kernel_size': self._dw_kernel_size,
        'dropout': self._dropout,
        **conv_norm.serialize_conv_norm_kwargs(self._conv_kwargs),
    }
    return {**super().get_config(), **config}


@tf_keras.utils.register_keras_serializable(package='univision')
class MobileMQABlock(tf_keras.layers.Layer):
  """Pre-norm Mobile MQA block: `x + DropPath(LayerScale(MQA(BN(x))))`."""

  def __init__(self,
               num_heads: int,
               key_dim: int,
               value_dim: int | None = None,
               kv_strides: int = 1,
               dw_kernel_size: int = 3,
               dropout: float = 0.0,
               use_residual: bool = True,
               layer_scale_init_value: float | None = 1e-5,
               stochastic_depth_drop_rate: float = 0.0,
               padding: str = 'same',
               kernel_initializer: str = 'VarianceScaling',
               kernel_regularizer: tf_keras.regularizers.Regularizer
               | None = None,
               use_sync_bn: bool = False,
               norm_momentum: float = 0.99,
               norm_epsilon: float = 0.001,
               **kwargs):
    """Initializes the block.

    Args:
      num_heads: An `int` number of query heads.
      key_dim: An `int` size of each query head and of the shared key head.
      value_dim: An `int` size of the shared value head (default `key_dim`).
      kv_strides: An `int` K/V downsampling stride (1: none).
      dw_kernel_size: An `int` kernel of the K/V downsampling DW conv.
      dropout: A `float` dropout rate on the attention probabilities.
      use_residual: A `bool`, whether to add the input back.
      layer_scale_init_value: A `float` initial LayerScale value, or None (or
        0) for no layer scale.
      stochastic_depth_drop_rate: A `float` drop rate of the attention branch.
      padding: A `str`, `'same'` or `'symmetric'` (see `conv_norm`).
      kernel_initializer: A `str` kernel initializer name.
      kernel_regularizer: A `tf_keras.regularizers.Regularizer` or None.
      use_sync_bn: A `bool`, whether to use synchronized batch norm.
      norm_momentum: A `float` batch norm momentum.
      norm_epsilon: A `float` batch norm epsilon.
      **kwargs: Keyword arguments for `tf_keras.layers.Layer`.
    """
    super().__init__(**kwargs)
    self._attention_args = dict(
        num_heads=num_heads, key_dim=key_dim, value_dim=value_dim or key_dim,
        kv_strides=kv_strides, dw_kernel_size=dw_kernel_size, dropout=dropout)
    self._use_residual = use_residual
    self._layer_scale_init_value = layer_scale_init_value
    self._stochastic_depth_drop_rate = stochastic_depth_drop_rate
    self._conv_kwargs = conv_norm.conv_norm_kwargs(
        padding, kernel_initializer, kernel_regularizer, use_sync_bn,
        norm_momentum, norm_epsilon)

  def build(self, input_shape):
    self.norm = tf_keras.layers.BatchNormalization(
        momentum=self._conv_kwargs['norm_momentum'],
        epsilon=self._conv_kwargs['norm_epsilon'],
        synchronized=self._conv_kwargs['use_sync_bn'])
    self.attention = MobileMultiQueryAttention(**self._attention_args,
                                               **self._conv_kwargs)
    self.layer_scale = residual.optional_layer_scale(
        self._layer_scale_init_value)
    self.drop_path = residual.optional_drop_path(
        self._use_residual, self._stochastic_depth_drop_rate)
    super().build(input_shape)

  def call(self, inputs, training=None):
    x = self.norm(inputs, training=training)
    x = self.attention(x, training=training)
    return residual.block_output(x, inputs, self._use_residual,
                                 self.layer_scale, self.drop_path, training)

  def get_config(self) -> dict[str, Any]:
    config = {
        **self._attention_args,
        'use_residual': self._use_residual,
        'layer_scale_init_value': self._layer_scale_init_value,
        'stochastic_depth_drop_rate': self._stochastic_depth_drop_rate,
        **conv_norm.serialize_conv_norm_kwargs(self._conv_kwargs),
    }
    return {**super().get_config(), **config}
