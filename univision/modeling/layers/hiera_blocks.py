"""Hiera's transformer block: mask-unit attention with query pooling.

Ryali et al., "Hiera", ICML 2023 (arXiv 2306.00989).

A plain pre-norm ViT block (LayerNorm eps 1e-6, GELU MLP) with two twists,
both done by reshapes on the unrolled token order of `hiera_tokens`:

* q-pooling: in the first block of a pooling stage the queries are max-pooled
  over the `q_stride x q_stride` leading phase, so the block outputs a
  quarter of the tokens; the residual, which also changes width there, is
  `maxpool(Linear(norm(x)))`;
* mask-unit attention: tokens attend only within their mask unit (the
  window), which in the unrolled order is every token that shares the
  trailing `num_windows` positions; global attention is one window.

The qkv projection's output channel `j * dim + h * head_dim + d` is q/k/v
(j = 0/1/2), head h, dimension d (timm's and the official layout).
"""
from typing import Any

import tensorflow as tf, tf_keras
from official.vision.modeling.layers import nn_layers

from univision.modeling.layers import conv_norm

LAYER_NORM_EPSILON = 1e-6


def _dense(units: int, regularizer, activation: str | None = None):
  return tf_keras.layers.Dense(
      units, activation=activation,
      kernel_initializer=tf_keras.initializers.TruncatedNormal(stddev=0.02),
      kernel_regularizer=regularizer)


def max_pool_tokens(tokens: tf.Tensor, pool_size: int) -> tf.Tensor:
  """Max over the leading phase of unrolled tokens: [B, N, C] -> [B, N/p, C]."""
  if pool_size == 1:
    return tokens
  pooled = tf.reshape(tokens, [tf.shape(tokens)[0], pool_size, -1,
                               tokens.shape[-1]])
  return tf.reduce_max(pooled, axis=1)


@tf_keras.utils.register_keras_serializable(package='univision')
class MaskUnitAttention(tf_keras.layers.Layer):
  """Multi-head attention within mask units (or global), with q-pooling."""

  def __init__(self, dim: int, num_heads: int, q_stride: int = 1,
               mask_unit_size: int = 8, use_mask_unit_attn: bool = False,
               kernel_regularizer: tf_keras.regularizers.Regularizer
               | None = None, **kwargs):
    """Initializes the layer.

    Args:
      dim: An `int` output width (and total q/k/v width).
      num_heads: An `int` number of heads; must divide `dim`.
      q_stride: An `int` query pooling stride per side (1: none).
      mask_unit_size: An `int` mask unit side in tokens after the pooling.
      use_mask_unit_attn: A `bool`; False attends over all tokens.
      kernel_regularizer: A `tf_keras.regularizers.Regularizer` or None.
      **kwargs: Keyword arguments for `tf_keras.layers.Layer`.
    """
    super().__init__(**kwargs)
    if dim % num_heads:
      raise ValueError(f'{self.name}: dim={dim} is not a multiple of '
                       f'num_heads={num_heads}.')
    self._dim = dim
    self._num_heads = num_heads
    self._q_stride = q_stride
    self._mask_unit_size = mask_unit_size
    self._use_mask_unit_attn = use_mask_unit_attn
    self._kernel_regularizer = tf_keras.regularizers.get(kernel_regularizer)

  def build(self, input_shape):
    self.qkv = _dense(3 * self._dim, self._kernel_regularizer)
    self.proj = _dense(self._dim, self._kernel_regularizer)
    super().build(input_shape)

  def call(self, tokens):
    batch = tf.shape(tokens)[0]
    head_dim = self._dim // self._num_heads
    pool = self._q_stride**2
    num_windows = 1
    if self._use_mask_unit_attn:
      window = pool * self._mask_unit_size**2  # Tokens per unit before pooling.
      num_windows = tf.shape(tokens)[1] // window
    # [B, t, w, 3, heads, d] -> [3, B, heads, w, t, d]: t indexes the tokens of
    # window w (phases, finest first), so q-pooling is a max over t's top.
    qkv = tf.reshape(self.qkv(tokens), [batch, -1, num_windows, 3,
                                        self._num_heads, head_dim])
    query, key, value = tf.unstack(tf.transpose(qkv, [3, 0, 4, 2, 1, 5]))
    if pool > 1:
      query = tf.reduce_max(tf.reshape(
          query, [batch, self._num_heads, num_windows, pool, -1, head_dim]),
                            axis=3)
    logits = tf.einsum('bhwqd,bhwkd->bhwqk', query, key)
    probs = tf.nn.softmax(logits * head_dim**-0.5, axis=-1)
    heads = tf.einsum('bhwqk,bhwkd->bqwhd', probs, value)
    return self.proj(tf.reshape(heads, [batch, -1, self._dim]))

  def get_config(self) -> dict[str, Any]:
    return {**super().get_config(), 'dim': self._dim,
            'num_heads': self._num_heads, 'q_stride': self._q_stride,
            'mask_unit_size': self._mask_unit_size,
            'use_mask_unit_attn': self._use_mask_unit_attn,
            'kernel_regularizer': conv_norm.serialize_regularizer(
                self._kernel_regularizer)}


@tf_keras.utils.register_keras_serializable(package='univision')
class HieraBlock(tf_keras.layers.Layer):
  """Pre-norm block: `x + DropPath(Attn(LN(x)))`, `x + DropPath(MLP(LN(x)))`.

  If the width changes, the first residual is `maxpool(Linear(LN(x)))`.
  """

  def __init__(self, dim: int, num_heads: int, q_stride: int = 1,
               mask_unit_size: int = 8, use_mask_unit_attn: bool = False,
               mlp_ratio: float = 4.0, stochastic_depth_drop_rate: float = 0.0,
               kernel_regularizer: tf_keras.regularizers.Regularizer
               | None = None, **kwargs):
    """Initializes the block.

    Args:
      dim: An `int` output width.
      num_heads: An `int` number of attention heads.
      q_stride: An `int` query pooling stride per side (1: none).
      mask_unit_size: An `int` mask unit side in tokens after the pooling.
      use_mask_unit_attn: A `bool`, mask-unit (True) or global attention.
      mlp_ratio: A `float` MLP hidden width over `dim`.
      stochastic_depth_drop_rate: A `float` drop rate of both branches.
      kernel_regularizer: A `tf_keras.regularizers.Regularizer` or None.
      **kwargs: Keyword arguments for `tf_keras.layers.Layer`.
    """
    super().__init__(**kwargs)
    self._attention_args = dict(
        dim=dim, num_heads=num_heads, q_stride=q_stride,
        mask_unit_size=mask_unit_size, use_mask_unit_attn=use_mask_unit_attn)
    self._mlp_ratio = mlp_ratio
    self._stochastic_depth_drop_rate = stochastic_depth_drop_rate
    self._kernel_regularizer = tf_keras.regularizers.get(kernel_regularizer)

  def build(self, input_shape):
    dim, q_stride = self._attention_args['dim'], self._attention_args[
        'q_stride']
    if input_shape[-1] == dim and q_stride > 1:
      raise ValueError(f'{self.name}: q-pooling needs a width change (the '
                       'residual is pooled through its projection).')
    self.norm1 = tf_keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON)
    self.proj = None
    if input_shape[-1] != dim:
      self.proj = _dense(dim, self._kernel_regularizer)
    self.attn = MaskUnitAttention(**self._attention_args,
                                  kernel_regularizer=self._kernel_regularizer)
    self.norm2 = tf_keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON)
    self.fc1 = _dense(int(dim * self._mlp_ratio), self._kernel_regularizer,
                      activation='gelu')
    self.fc2 = _dense(dim, self._kernel_regularizer)
    self.drop_path = None
    if self._stochastic_depth_drop_rate:
      self.drop_path = nn_layers.StochasticDepth(
          self._stochastic_depth_drop_rate)
    super().build(input_shape)

  def _drop(self, branch, training):
    if self.drop_path is None:
      return branch
    return self.drop_path(branch, training=training)

  def call(self, tokens, training=None):
    normed = self.norm1(tokens)
    if self.proj is not None:
      tokens = max_pool_tokens(self.proj(normed),
                               self._attention_args['q_stride']**2)
    tokens += self._drop(self.attn(normed), training)
    return tokens + self._drop(self.fc2(self.fc1(self.norm2(tokens))),
                               training)

  def get_config(self) -> dict[str, Any]:
    return {**super().get_config(), **self._attention_args,
            'mlp_ratio': self._mlp_ratio,
            'stochastic_depth_drop_rate': self._stochastic_depth_drop_rate,
            'kernel_regularizer': conv_norm.serialize_regularizer(
                self._kernel_regularizer)}
