"""Hiera's token layout: patch embedding, unroll / reroll, mask-unit keep.

Ryali et al., "Hiera", ICML 2023 (arXiv 2306.00989); the unroll / reroll
scheme is that of the reference code (facebookresearch/hiera, timm).

Hiera never moves tokens between blocks. Instead it *unrolls* the token map
once, right after the patch embedding, into an order in which every later
operation is a reshape:

* one unroll level with stride s splits the map into the s x s phases
  `(y mod s, x mod s)`, each a map of a quarter size (for s = 2), and puts the
  phase first; applying it `NUM_STAGES - 1` times gives the layout
  `[phase_1, phase_2, phase_3, unit_y, unit_x]` (flattened, finest phase
  first), where `(unit_y, unit_x)` is the grid of 8 x 8-token blocks;
* q-pooling is then a max over the leading phase (`[B, s*s, N / s*s, C]`),
  which consumes one level; and a mask unit (a block of s**m tokens per side)
  is the set of tokens that share everything after the first m phases, so
  mask-unit attention is a reshape too;
* *reroll* undoes the levels that pooling has not consumed, giving a raster
  [B, H, W, C] map at each stage (or, with dropped mask units, each kept
  unit's tokens as a small map).

Masked units (MAE) are dropped right after unrolling, which is possible
because with `mask_unit_size = s**3` the mask-unit grid is exactly the
trailing `(unit_y, unit_x)` part of the layout.
"""
from typing import Any

import tensorflow as tf, tf_keras

from univision.modeling.layers import conv_norm

PATCH_KERNEL, PATCH_STRIDE, PATCH_PADDING = 7, 4, 3


def _dims(x: tf.Tensor) -> list[int | tf.Tensor]:
  """The shape of `x`, static where known (keeps Keras' shape inference)."""
  dynamic = tf.shape(x)
  return [d if d is not None else dynamic[i] for i, d in enumerate(x.shape)]


def unroll_levels(maps: tf.Tensor, stride: int, num_levels: int) -> tf.Tensor:
  """[B, H, W, C] -> [B * (stride**2)**num_levels, H / s**n, W / s**n, C].

  Each level moves the `stride x stride` phases of the map into the batch
  axis, after the axes already there (so the first level varies slowest).
  """
  for _ in range(num_levels):
    _, height, width, channels = _dims(maps)
    height, width = height // stride, width // stride
    maps = tf.reshape(maps, [-1, height, stride, width, stride, channels])
    maps = tf.transpose(maps, [0, 2, 4, 1, 3, 5])
    maps = tf.reshape(maps, [-1, height, width, channels])
  return maps


def reroll_levels(maps: tf.Tensor, stride: int, num_levels: int) -> tf.Tensor:
  """The inverse of `unroll_levels`: the last level put in is undone first."""
  for _ in range(num_levels):
    _, height, width, channels = _dims(maps)
    maps = tf.reshape(maps, [-1, stride, stride, height, width, channels])
    maps = tf.transpose(maps, [0, 3, 1, 4, 2, 5])
    maps = tf.reshape(maps, [-1, height * stride, width * stride, channels])
  return maps


def keep_mask_units(tokens: tf.Tensor, keep: tf.Tensor) -> tf.Tensor:
  """Drops the tokens of masked units from a fully unrolled sequence.

  Args:
    tokens: [B, L * U, C] tokens unrolled down to the mask-unit grid: L
      tokens per unit (the phases), U units in raster order, last.
    keep: [B, U] bool, True = keep; the same count K in every row.

  Returns:
    [B, L * K, C]: the same layout with only the kept units, in raster order.
  """
  batch, length, channels = _dims(tokens)
  units = keep.shape[1]
  phases = length // units  # L; static whenever the sequence length is.
  by_unit = tf.transpose(tf.reshape(tokens, [batch, phases, units, channels]),
                         [0, 2, 1, 3])  # [B, U, L, C]
  kept = tf.boolean_mask(by_unit, keep)  # [B * K, L, C]
  kept = tf.reshape(kept, [batch, -1, phases, channels])
  return tf.reshape(tf.transpose(kept, [0, 2, 1, 3]), [batch, -1, channels])


def keep_mask_from_noise(noise: tf.Tensor, num_keep: int) -> tf.Tensor:
  """[B, U] bool: True for the `num_keep` lowest-noise units of each row."""
  ranks = tf.argsort(tf.argsort(noise, axis=1, stable=True), axis=1)
  return ranks < num_keep


def random_keep_mask(batch_size: int, num_mask_units: int, mask_ratio: float,
                     seed: int | None = None) -> tf.Tensor:
  """[B, num_mask_units] bool, `int(num_mask_units * (1 - mask_ratio))` True.

  Kept units are uniformly random and different per image (MAE masking).
  """
  num_keep = int(num_mask_units * (1 - mask_ratio))
  noise = tf.random.uniform([batch_size, num_mask_units], seed=seed)
  return keep_mask_from_noise(noise, num_keep)


@tf_keras.utils.register_keras_serializable(package='univision')
class HieraPatchEmbedding(tf_keras.layers.Layer):
  """7x7 stride-4 conv (padding 3) plus a learned absolute position embedding.

  The position embedding has one vector per token of the input size seen at
  build time, [1, H/4 * W/4, C] in raster order (timm's layout), so the
  layer is tied to that input size.
  """

  def __init__(self, embed_dim: int,
               kernel_regularizer: tf_keras.regularizers.Regularizer
               | None = None, **kwargs):
    """Initializes the layer.

    Args:
      embed_dim: An `int` number of output channels.
      kernel_regularizer: A `tf_keras.regularizers.Regularizer` or None.
      **kwargs: Keyword arguments for `tf_keras.layers.Layer`.
    """
    super().__init__(**kwargs)
    self._embed_dim = embed_dim
    self._kernel_regularizer = tf_keras.regularizers.get(kernel_regularizer)

  def build(self, input_shape):
    height, width = input_shape[1], input_shape[2]
    if height is None or width is None:
      raise ValueError(f'{self.name}: the position embedding needs a fixed '
                       f'input size, got {tuple(input_shape)}.')
    self._grid = (height // PATCH_STRIDE, width // PATCH_STRIDE)
    self.pad = tf_keras.layers.ZeroPadding2D(PATCH_PADDING)
    self.conv = tf_keras.layers.Conv2D(
        self._embed_dim, PATCH_KERNEL, strides=PATCH_STRIDE,
        kernel_regularizer=self._kernel_regularizer)
    self.pos_embed = self.add_weight(
        name='pos_embed', shape=(1, self._grid[0] * self._grid[1],
                                 self._embed_dim),
        initializer=tf_keras.initializers.TruncatedNormal(stddev=0.02))
    super().build(input_shape)

  def call(self, images, unit_mask=None):
    """Embeds `images`; [B, H, W, 3] -> [B, H/4, W/4, C].

    Args:
      images: [B, H, W, 3] images.
      unit_mask: Optional [B, units_y, units_x] bool keep mask over mask
        units. Pixels under masked units are zeroed before the conv (as the
        reference MAE does), so that the 7x7 kernel of a kept border token
        sees zeros, not its masked neighbours.

    Returns:
      The token map with position embeddings added.
    """
    if unit_mask is not None:
      pixels_y = images.shape[1] // unit_mask.shape[1]
      pixels_x = images.shape[2] // unit_mask.shape[2]
      pixels = tf.repeat(tf.repeat(unit_mask, pixels_y, axis=1), pixels_x,
                         axis=2)
      images *= tf.cast(pixels[..., None], images.dtype)
    maps = self.conv(self.pad(images))
    position = tf.reshape(self.pos_embed, [1, *self._grid, self._embed_dim])
    return maps + tf.cast(position, maps.dtype)

  def get_config(self) -> dict[str, Any]:
    return {**super().get_config(), 'embed_dim': self._embed_dim,
            'kernel_regularizer': conv_norm.serialize_regularizer(
                self._kernel_regularizer)}


@tf_keras.utils.register_keras_serializable(package='univision')
class Unroll(tf_keras.layers.Layer):
  """[B, H, W, C] map -> [B, H*W, C] tokens in Hiera's unrolled order."""

  def __init__(self, q_stride: int = 2, num_levels: int = 3, **kwargs):
    """Initializes the layer.

    Args:
      q_stride: An `int` stride per side of each level.
      num_levels: An `int` number of levels (one per stage transition).
      **kwargs: Keyword arguments for `tf_keras.layers.Layer`.
    """
    super().__init__(**kwargs)
    self._q_stride = q_stride
    self._num_levels = num_levels

  def call(self, maps):
    tokens = unroll_levels(maps, self._q_stride, self._num_levels)
    batch, height, width, channels = _dims(maps)
    return tf.reshape(tokens, [batch, height * width, channels])

  def get_config(self) -> dict[str, Any]:
    return {**super().get_config(), 'q_stride': self._q_stride,
            'num_levels': self._num_levels}


@tf_keras.utils.register_keras_serializable(package='univision')
class Reroll(tf_keras.layers.Layer):
  """Unrolled tokens of one stage -> a raster map (or per-unit maps).

  `num_levels` is the number of unroll levels not yet consumed by q-pooling
  at that stage (3 - number of poolings so far).
  """

  def __init__(self, height: int, width: int, q_stride: int = 2,
               num_levels: int = 3, **kwargs):
    """Initializes the layer.

    Args:
      height: An `int` height of the rerolled map, in this stage's tokens.
      width: An `int` width of the rerolled map.
      q_stride: An `int` stride per side of each level.
      num_levels: An `int` number of levels to undo.
      **kwargs: Keyword arguments for `tf_keras.layers.Layer`.
    """
    super().__init__(**kwargs)
    self._height, self._width = height, width
    self._q_stride = q_stride
    self._num_levels = num_levels

  def call(self, tokens, per_unit: bool = False):
    """Rerolls [B, N, C] tokens.

    Args:
      tokens: [B, N, C] tokens of this stage, in unrolled order.
      per_unit: If True, `tokens` come from `keep_mask_units` (the unit grid
        is the last part of the layout) and the result is [B, K, u, u, C]:
        each kept unit's tokens as a u x u map, u = q_stride**num_levels,
        units in raster order. Otherwise [B, height, width, C].

    Returns:
      The rerolled tokens.
    """
    batch, _, channels = _dims(tokens)
    size = self._q_stride**self._num_levels
    if per_unit:
      phases = tf.reshape(tokens, [batch, size * size, -1, channels])
      units = tf.reshape(tf.transpose(phases, [0, 2, 1, 3]),
                         [-1, 1, 1, channels])
      units = reroll_levels(units, self._q_stride, self._num_levels)
      return tf.reshape(units, [batch, -1, size, size, channels])
    grid = tf.reshape(tokens, [-1, self._height // size, self._width // size,
                               channels])
    maps = reroll_levels(grid, self._q_stride, self._num_levels)
    return tf.reshape(maps, [batch, self._height, self._width, channels])

  def get_config(self) -> dict[str, Any]:
    return {**super().get_config(), 'height': self._height,
            'width': self._width, 'q_stride': self._q_stride,
            'num_levels': self._num_levels}
