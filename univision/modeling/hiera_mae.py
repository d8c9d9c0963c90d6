"""Hiera masked autoencoder: mask-unit masking, multi-scale fusion, decoder.

Ryali et al., "Hiera", ICML 2023 (arXiv 2306.00989), section 3 and its
reference code (facebookresearch/hiera `hiera_mae.py`, `mae_hiera_*_224`).

* Masking: whole mask units (8x8 stage-1 tokens = 32x32 px) are dropped,
  `mae_ops.num_kept(units, mask_ratio)` kept per image (19 of 49 at 224 px
  with the paper's ratio 0.6); the Hiera encoder (`q_pool=2`) runs on the
  kept units only (`Hiera.call(..., keep_mask=...)`).
* Multi-scale fusion: the outputs of stages 1..q_pool are mapped to the
  final mask-unit resolution (2x2 tokens with q_pool=2) by strided convs
  (kernel = stride) to the last stage's width, summed with the last stage
  and layer-normed.
* Decoder: Linear to `decoder_dim`, mask tokens for dropped units, learned
  position embedding over the final token grid in raster order (14x14 at
  224 px), `decoder_depth` global-attention `HieraBlock`s, LayerNorm, Linear
  to `pred_stride**2 * channels`, `pred_stride = 4 * 2**q_pool` (16 px).
* Targets (`mae_ops.reconstruction_loss(..., channels_first=True)`): each
  token's `pred_stride x pred_stride` pixel patch flattened as (channel,
  row, column), the reference's `unfold` order, normalised per patch.

As in the reference, every Linear kernel (the encoder's too) starts
xavier-uniform with zero bias and the patch embedding is initialised like a
Linear on flattened patches; the fusion convs keep PyTorch's default kernel
scale U(+-1/sqrt(fan_in)) (their biases start at zero here).
"""
import math
from typing import Any, Optional

import tensorflow as tf, tf_keras

from univision.modeling import mae
from univision.modeling import mae_ops
from univision.modeling.backbones import hiera
from univision.modeling.layers import hiera_blocks
from univision.modeling.layers import hiera_tokens

Q_POOL = 2  # The MAE encoder's q-pooling transitions (`mae_hiera_*_224`).
MASK_UNIT_PIXELS = 32  # 8 x 8 stage-1 tokens of 4 px: the backbone default.


def pred_stride(q_pool: int = Q_POOL) -> int:
  """Side in pixels of the patch one decoder token predicts (16 at q_pool 2)."""
  return hiera_tokens.PATCH_STRIDE * 2**q_pool


@tf_keras.utils.register_keras_serializable(package='univision')
class MultiScaleFusion(tf_keras.layers.Layer):
  """Sum of per-unit stage maps at the last stage's unit size, then LayerNorm.

  Called on a list of [B, K, u_i, u_i, C_i] maps (stages 1..q_pool, then the
  last stage, [B, K, u, u, dim]); map i goes through a `strides[i]` x
  `strides[i]` conv with that stride (none for the last).
  """

  def __init__(self, dim: int, strides: list[int], **kwargs):
    """Initializes the layer.

    Args:
      dim: An `int` output width (the last stage's).
      strides: `int` conv strides, one per earlier stage map.
      **kwargs: Keyword arguments for `tf_keras.layers.Layer`.
    """
    super().__init__(**kwargs)
    self._dim = dim
    self._strides = list(strides)

  def build(self, input_shape):
    self.convs = [
        tf_keras.layers.Conv2D(
            self._dim, stride, strides=stride,
            kernel_initializer=tf_keras.initializers.VarianceScaling(
                1.0 / 3.0, 'fan_in', 'uniform'), name=f'fusion{index}')
        for index, stride in enumerate(self._strides)]
    self.norm = tf_keras.layers.LayerNormalization(
        epsilon=hiera_blocks.LAYER_NORM_EPSILON, name='encoder_layer_norm')
    super().build(input_shape)

  def call(self, maps: list[tf.Tensor]) -> tf.Tensor:
    fused = maps[-1]
    for conv, units in zip(self.convs, maps):
      batch, kept = tf.shape(units)[0], tf.shape(units)[1]
      mapped = conv(tf.reshape(units, [-1, *units.shape[2:]]))
      fused += tf.reshape(mapped, [batch, kept, *mapped.shape[1:]])
    return self.norm(fused)

  def get_config(self) -> dict[str, Any]:
    return {**super().get_config(), 'dim': self._dim,
            'strides': self._strides}


@tf_keras.utils.register_keras_serializable(package='univision')
class HieraMAEDecoder(tf_keras.layers.Layer):
  """Mask tokens, raster order, positions, global Hiera blocks, prediction.

  Called on `latent` [B, K, u, u, D] (the kept units, raster order) and
  `keep` [B, U] bool, returns [B, N, pred_stride**2 * channels] predictions
  for all N = U * u * u tokens of the final grid, in raster order.
  """

  def __init__(self, unit_grid: tuple[int, int], unit_size: int,
               pred_stride: int, decoder_dim: int = 512, depth: int = 8,
               num_heads: int = 16, channels: int = 3, mlp_ratio: float = 4.0,
               **kwargs):
    """Initializes the decoder.

    Args:
      unit_grid: (rows, columns) of mask units.
      unit_size: An `int` side of a mask unit in final tokens.
      pred_stride: An `int` side in pixels of the patch a token predicts.
      decoder_dim: An `int` decoder width.
      depth: An `int` number of decoder blocks.
      num_heads: An `int` number of attention heads per block.
      channels: An `int` number of image channels.
      mlp_ratio: A `float` MLP hidden width over `decoder_dim`.
      **kwargs: Keyword arguments for `tf_keras.layers.Layer`.
    """
    super().__init__(**kwargs)
    self._unit_grid = tuple(unit_grid)
    self._unit_size = unit_size
    self._pred_stride = pred_stride
    self._decoder_dim = decoder_dim
    self._depth = depth
    self._num_heads = num_heads
    self._channels = channels
    self._mlp_ratio = mlp_ratio

  @property
  def num_tokens(self) -> int:
    return self._unit_grid[0] * self._unit_grid[1] * self._unit_size**2

  def build(self, input_shape):
    self.embed = tf_keras.layers.Dense(self._decoder_dim, name='decoder_embed')
    self.mask_token = self.add_weight(
        'mask_token', [1, 1, self._decoder_dim],
        initializer=tf_keras.initializers.TruncatedNormal(stddev=0.02))
    self.pos_embed = self.add_weight(
        'pos_embed', [1, self.num_tokens, self._decoder_dim],
        initializer=tf_keras.initializers.TruncatedNormal(stddev=0.02))
    self.blocks = [hiera_blocks.HieraBlock(
        self._decoder_dim, self._num_heads, mlp_ratio=self._mlp_ratio,
        name=f'decoder_block{index}') for index in range(self._depth)]
    self.norm = tf_keras.layers.LayerNormalization(
        epsilon=hiera_blocks.LAYER_NORM_EPSILON, name='decoder_layer_norm')
    self.pred = tf_keras.layers.Dense(
        self._pred_stride**2 * self._channels, name='decoder_pred')
    super().build(input_shape)

  def call(self, latent, keep, training=None):
    x = self.embed(latent)
    # Unit j of the full grid takes kept unit cumsum(keep)[j] - 1.
    slots = tf.maximum(tf.cumsum(tf.cast(keep, tf.int32), axis=1) - 1, 0)
    x = tf.gather(x, slots, batch_dims=1)  # [B, U, u, u, D]
    x = tf.where(keep[:, :, None, None, None], x,
                 tf.cast(self.mask_token, x.dtype))
    rows, cols = self._unit_grid
    size = self._unit_size
    x = tf.reshape(x, [-1, rows, cols, size, size, self._decoder_dim])
    x = tf.reshape(tf.transpose(x, [0, 1, 3, 2, 4, 5]),
                   [-1, self.num_tokens, self._decoder_dim])
    x += tf.cast(self.pos_embed, x.dtype)
    for block in self.blocks:
      x = block(x, training=training)
    return self.pred(self.norm(x))

  def get_config(self) -> dict[str, Any]:
    return {**super().get_config(), 'unit_grid': self._unit_grid,
            'unit_size': self._unit_size, 'pred_stride': self._pred_stride,
            'decoder_dim': self._decoder_dim, 'depth': self._depth,
            'num_heads': self._num_heads, 'channels': self._channels,
            'mlp_ratio': self._mlp_ratio}


def removed_tokens(keep: tf.Tensor, unit_grid: tuple[int, int],
                   unit_size: int) -> tf.Tensor:
  """[B, U] keep mask -> [B, N] float, 1 for tokens of removed units."""
  units = tf.reshape(keep, [-1, *unit_grid])
  tokens = tf.repeat(tf.repeat(units, unit_size, axis=1), unit_size, axis=2)
  return 1.0 - tf.cast(tf.reshape(tokens, [tf.shape(keep)[0], -1]),
                       tf.float32)


@tf_keras.utils.register_keras_serializable(package='univision')
class HieraMaskedAutoencoder(tf_keras.Model):
  """Hiera MAE on [B, H, W, 3] images (H, W multiples of 32).

  Returns a dict: `predictions` [B, N, patch_size**2 * 3] over the final
  token grid (N = H/16 * W/16 with q_pool=2) and `mask` [B, N] (1 = token
  of a removed unit); the loss is `mae_ops.reconstruction_loss` with
  `patch_size` and `channels_first=True`.
  """

  def __init__(self, image_size: tuple[int, int],
               model_id: str = 'hiera_base', mask_ratio: float = 0.6,
               q_pool: int = Q_POOL, decoder_dim: int = 512,
               decoder_depth: int = 8, decoder_heads: int = 16,
               channels: int = 3, **kwargs):
    """Builds the encoder, fusion and decoder.

    Args:
      image_size: (height, width), multiples of 32 (the mask unit, in px).
      model_id: A `str`, one of `hiera_specs.MODEL_SPECS`.
      mask_ratio: A `float` fraction of mask units removed.
      q_pool: An `int` number of q-pooling transitions (2 in the paper).
      decoder_dim: An `int` decoder width.
      decoder_depth: An `int` number of decoder blocks.
      decoder_heads: An `int` number of decoder attention heads.
      channels: An `int` number of image channels.
      **kwargs: Keyword arguments for `tf_keras.Model`.

    Raises:
      ValueError: for a bad `model_id`, image size or `mask_ratio` (one that
        keeps no unit).
    """
    super().__init__(**kwargs)
    height, width = image_size
    self._config = dict(image_size=(height, width), model_id=model_id,
                        mask_ratio=mask_ratio, q_pool=q_pool,
                        decoder_dim=decoder_dim, decoder_depth=decoder_depth,
                        decoder_heads=decoder_heads, channels=channels)
    self._unit_grid = (height // MASK_UNIT_PIXELS, width // MASK_UNIT_PIXELS)
    units = self._unit_grid[0] * self._unit_grid[1]
    self.num_keep = mae_ops.num_kept(units, mask_ratio)
    if self.num_keep < 1:
      raise ValueError(f'mask_ratio={mask_ratio} keeps no mask unit of '
                       f'{units} at {height}x{width}.')
    self.encoder = hiera.Hiera(
        model_id, tf_keras.layers.InputSpec(shape=[None, height, width,
                                                   channels]),
        q_pool=q_pool, include_head=False, name='encoder')
    levels = [str(stage + 1) for stage in range(1, q_pool + 1)]
    self._fused_levels = levels + ['5']
    last = self.encoder.output_specs['5']  # [None, H/s, W/s, dim]
    self.patch_size = pred_stride(q_pool)
    self._unit_size = last[1] // self._unit_grid[0]
    self.fusion = MultiScaleFusion(
        last[-1], [self.encoder.output_specs[level][1] // last[1]
                   for level in levels], name='fusion')
    self.decoder = HieraMAEDecoder(
        self._unit_grid, self._unit_size, self.patch_size, decoder_dim,
        decoder_depth, decoder_heads, channels, name='decoder')

  @property
  def num_mask_units(self) -> int:
    """Mask units per image, the positions the masking noise ranks."""
    return self.encoder.num_mask_units

  def build(self, input_shape):
    super().build(input_shape)
    with tf.init_scope():
      self._initialize_like_reference()

  def _initialize_like_reference(self):
    """Xavier-uniform Linear kernels; patch embedding as a Linear."""
    for module in self.submodules:
      if isinstance(module, tf_keras.layers.Dense):
        module.kernel.assign(
            tf_keras.initializers.GlorotUniform()(module.kernel.shape))
    kernel = self.encoder.get_layer('patch_embed').conv.kernel
    *window, _ = kernel.shape
    kernel.assign(mae.linear_like_uniform(math.prod(window),
                                          kernel.shape[-1])(kernel.shape))

  def call(self, inputs, training=None, noise: Optional[tf.Tensor] = None):
    """Masks, encodes and decodes `inputs`.

    Args:
      inputs: [B, H, W, C] images.
      training: Whether in training mode.
      noise: Optional [B, num_mask_units] noise; the `num_keep` units with
        the lowest noise are kept (uniform noise if None).

    Returns:
      A dict with `predictions` and `mask` (see the class docstring).
    """
    if noise is None:
      noise = tf.random.uniform([tf.shape(inputs)[0], self.num_mask_units])
    keep = hiera_tokens.keep_mask_from_noise(noise, self.num_keep)
    levels = self.encoder(inputs, training=training, keep_mask=keep)
    latent = self.fusion([levels[level] for level in self._fused_levels])
    predictions = self.decoder(latent, keep, training=training)
    return {'predictions': predictions,
            'mask': removed_tokens(keep, self._unit_grid, self._unit_size)}

  @property
  def checkpoint_items(self) -> dict[str, tf.Module]:
    """The Hiera encoder, as the backbone a classifier initialises from."""
    return {'backbone': self.encoder}

  def get_config(self) -> dict[str, Any]:
    return {**self._config, 'name': self.name}

  @classmethod
  def from_config(cls, config, custom_objects=None):
    return cls(**config)
