"""Masked-autoencoder operations: position codes, masking, patches, loss.

He et al., "Masked Autoencoders Are Scalable Vision Learners" (CVPR 2022).
Model Garden's wheel has none of these (its MAE project is not in the wheel,
and there masking happens in the input pipeline), so they are ours; the
layers that use them are in `univision.modeling.mae`.

Conventions follow the reference code (facebookresearch/mae) so that its
weights and numbers carry over: images are NHWC; a patch is flattened in
(row, column, channel) order; the mask is 1 for a removed patch and 0 for a
kept one; in the 2-D sin-cos code the first half of the channels encodes the
column and the second half the row.
"""
from typing import NamedTuple, Optional

import numpy as np
import tensorflow as tf

NORM_PIX_EPSILON = 1e-6


def sincos_1d(dim: int, positions: np.ndarray) -> np.ndarray:
  """Sin-cos codes [len(positions), dim]: sines then cosines.

  Frequencies are 1 / 10000^(i / (dim / 2)), i = 0 .. dim/2 - 1
  (Vaswani et al. 2017).
  """
  if dim % 2:
    raise ValueError(f'sin-cos position codes need an even dim, got {dim}.')
  omega = 1.0 / 10000.0**(np.arange(dim // 2, dtype=np.float64) / (dim / 2))
  angles = np.outer(positions.reshape(-1), omega)
  return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def sincos_2d(dim: int, grid_height: int, grid_width: int,
              cls_token: bool = True) -> np.ndarray:
  """Fixed 2-D sin-cos position embeddings [(1 +) H * W, dim], row-major.

  Args:
    dim: An `int` embedding width, divisible by 4.
    grid_height: An `int` number of patch rows.
    grid_width: An `int` number of patch columns.
    cls_token: A `bool`; if True a zero row for the class token comes first.

  Returns:
    A float32 array.
  """
  if dim % 4:
    raise ValueError(f'2-D sin-cos position codes need dim % 4 == 0, got '
                     f'{dim}.')
  rows, cols = np.meshgrid(np.arange(grid_height, dtype=np.float64),
                           np.arange(grid_width, dtype=np.float64),
                           indexing='ij')
  codes = np.concatenate([sincos_1d(dim // 2, cols),
                          sincos_1d(dim // 2, rows)], axis=1)
  if cls_token:
    codes = np.concatenate([np.zeros([1, dim]), codes], axis=0)
  return codes.astype(np.float32)


class Masking(NamedTuple):
  """The result of `random_masking`.

  Attributes:
    kept: [B, K, D] the kept tokens, in shuffled order.
    ids_keep: [B, K] int32 indices (into the N tokens) of the kept tokens.
    mask: [B, N] float32, 1 where a token was removed, 0 where kept.
    ids_restore: [B, N] int32; gathering the shuffled sequence (kept tokens
      then removed ones) with it restores the original order.
  """
  kept: tf.Tensor
  ids_keep: tf.Tensor
  mask: tf.Tensor
  ids_restore: tf.Tensor


def num_kept(num_tokens: int, mask_ratio: float) -> int:
  """Tokens kept per sample: int(N * (1 - mask_ratio)), as the reference."""
  if not 0.0 <= mask_ratio < 1.0:
    raise ValueError(f'mask_ratio must be in [0, 1), got {mask_ratio}.')
  return int(num_tokens * (1.0 - mask_ratio))


def random_masking(tokens: tf.Tensor, mask_ratio: float,
                   noise: Optional[tf.Tensor] = None) -> Masking:
  """Per-sample random masking by sorting uniform noise.

  Each sample keeps the `num_kept(N, mask_ratio)` tokens with the smallest
  noise, so every sample keeps exactly the same number.

  Args:
    tokens: A [B, N, D] tensor with a static N.
    mask_ratio: A `float` fraction of tokens to remove.
    noise: An optional [B, N] tensor (for tests); uniform if None.

  Returns:
    A `Masking`.
  """
  num_tokens = tokens.shape[1]
  keep = num_kept(num_tokens, mask_ratio)
  if noise is None:
    noise = tf.random.uniform(tf.shape(tokens)[:2])
  ids_shuffle = tf.argsort(noise, axis=1, stable=True)
  ids_restore = tf.argsort(ids_shuffle, axis=1, stable=True)
  ids_keep = ids_shuffle[:, :keep]
  kept = tf.gather(tokens, ids_keep, batch_dims=1)
  shuffled_mask = tf.concat(
      [tf.zeros_like(ids_keep, tf.float32),
       tf.ones_like(ids_shuffle[:, keep:], tf.float32)], axis=1)
  mask = tf.gather(shuffled_mask, ids_restore, batch_dims=1)
  return Masking(kept, ids_keep, mask, ids_restore)


def patchify(images: tf.Tensor, patch_size: int,
             channels_first: bool = False) -> tf.Tensor:
  """[B, H, W, C] images -> [B, (H/p) * (W/p), p * p * C] row-major patches.

  A patch is flattened in (row, column, channel) order, or with
  `channels_first` in (channel, row, column) order (Hiera's MAE targets).
  """
  _, height, width, channels = images.shape
  if height % patch_size or width % patch_size:
    raise ValueError(f'Image size {height}x{width} is not a multiple of the '
                     f'patch size {patch_size}.')
  rows, cols = height // patch_size, width // patch_size
  x = tf.reshape(images, [-1, rows, patch_size, cols, patch_size, channels])
  x = tf.transpose(x, [0, 1, 3, 5, 2, 4] if channels_first else
                   [0, 1, 3, 2, 4, 5])
  return tf.reshape(x, [-1, rows * cols, patch_size * patch_size * channels])


def unpatchify(patches: tf.Tensor, patch_size: int, grid_height: int,
               grid_width: int) -> tf.Tensor:
  """Inverse of `patchify` (channels last): [B, HW, ppC] -> [B, Hp, Wp, C]."""
  channels = patches.shape[-1] // (patch_size * patch_size)
  x = tf.reshape(patches, [-1, grid_height, grid_width, patch_size,
                           patch_size, channels])
  x = tf.transpose(x, [0, 1, 3, 2, 4, 5])
  return tf.reshape(x, [-1, grid_height * patch_size,
                        grid_width * patch_size, channels])


def normalized_patches(patches: tf.Tensor) -> tf.Tensor:
  """Per-patch normalised targets (`norm_pix_loss`).

  Each patch's values are shifted by their mean and divided by
  sqrt(var + 1e-6), where var is the unbiased (N - 1) variance, as
  `torch.var` computes it in the reference.
  """
  count = tf.cast(tf.shape(patches)[-1], patches.dtype)
  mean = tf.reduce_mean(patches, axis=-1, keepdims=True)
  var = tf.reduce_sum(tf.square(patches - mean), axis=-1,
                      keepdims=True) / (count - 1.0)
  return (patches - mean) / tf.sqrt(var + NORM_PIX_EPSILON)


def reconstruction_loss(images: tf.Tensor, predictions: tf.Tensor,
                        mask: tf.Tensor, patch_size: int,
                        norm_pix_loss: bool,
                        channels_first: bool = False) -> tf.Tensor:
  """Mean squared error over the removed patches only.

  Args:
    images: [B, H, W, C] input images.
    predictions: [B, N, p * p * C] decoder outputs.
    mask: [B, N], 1 for removed patches.
    patch_size: An `int` patch side.
    norm_pix_loss: A `bool`; if True targets are `normalized_patches`.
    channels_first: A `bool`, the patch layout of `predictions` (see
      `patchify`).

  Returns:
    A float32 scalar: the per-patch MSE averaged over removed patches.
  """
  targets = patchify(tf.cast(images, tf.float32), patch_size, channels_first)
  if norm_pix_loss:
    targets = normalized_patches(targets)
  per_patch = tf.reduce_mean(
      tf.square(tf.cast(predictions, tf.float32) - targets), axis=-1)
  mask = tf.cast(mask, tf.float32)
  return tf.reduce_sum(per_patch * mask) / tf.reduce_sum(mask)
