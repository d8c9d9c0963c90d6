"""ViT masked autoencoder (MAE): encoder on visible patches, light decoder.

He et al., "Masked Autoencoders Are Scalable Vision Learners" (CVPR 2022);
reference: facebookresearch/mae `models_mae.py`. Model Garden's wheel has no
MAE model (its `official/projects/mae` is not shipped), and its
`vit.Encoder` hard-codes the tanh-approximated GELU, whereas MAE (timm) uses
the exact one. So the transformer stacks here are Model Garden's
`nn_blocks.TransformerEncoderBlock` (pre-norm, LayerNorm eps 1e-6, as
`vit.Encoder` builds them) with the exact GELU, plus a final LayerNorm.

The encoder (`MAEEncoder`) is the part a classifier later reuses:
`MaskedAutoencoder.checkpoint_items['backbone']` is it, so a checkpoint of
this model can initialise a ViT whose backbone is an `MAEEncoder` with
`mask_ratio=0`, through Model Garden's `init_checkpoint_modules='backbone'`.
"""
import dataclasses
from typing import Any, Optional

import numpy as np
import tensorflow as tf, tf_keras
from official.vision.modeling.layers import nn_blocks

from univision.modeling import mae_ops


@dataclasses.dataclass(frozen=True)
class ViTSize:
  """One ViT size: width, depth, heads, patch side."""
  embed_dim: int
  depth: int
  num_heads: int
  patch_size: int


# Base/large/huge: Dosovitskiy et al. 2021, Table 1, and models_mae.py's
# mae_vit_{base,large}_patch16 / mae_vit_huge_patch14. 'tiny' is ours, for
# CPU runs and tests on 32x32 images (not a paper size).
VIT_SIZES = {
    'tiny': ViTSize(embed_dim=64, depth=4, num_heads=4, patch_size=4),
    'base': ViTSize(embed_dim=768, depth=12, num_heads=12, patch_size=16),
    'large': ViTSize(embed_dim=1024, depth=24, num_heads=16, patch_size=16),
    'huge': ViTSize(embed_dim=1280, depth=32, num_heads=16, patch_size=14),
}


def get_vit_size(name: str) -> ViTSize:
  """The `ViTSize` called `name`; the error lists the known sizes."""
  if name not in VIT_SIZES:
    raise ValueError(f'Unknown ViT size {name!r}; known: '
                     f'{sorted(VIT_SIZES)}.')
  return VIT_SIZES[name]


def linear_like_uniform(fan_in: int, fan_out: int):
  """Xavier-uniform for a kernel seen as a [fan_in, fan_out] matrix."""
  limit = float(np.sqrt(6.0 / (fan_in + fan_out)))
  return tf_keras.initializers.RandomUniform(-limit, limit)


def patch_embedding(embed_dim: int, patch_size: int, height: int, width: int,
                    channels: int, subject: str) -> tf_keras.layers.Conv2D:
  """A ViT patch embedding (`patch_embed`), initialised like the reference's.

  A `patch_size`-strided conv, initialised like a Linear on flattened
  patches, as facebookresearch/mae does.

  Args:
    embed_dim: An `int` token width.
    patch_size: An `int` patch side in pixels.
    height: An `int` input height in pixels.
    width: An `int` input width in pixels.
    channels: An `int` number of input channels.
    subject: A `str` the size error starts with, naming the layer and its
      input (e.g. `'encoder: input 30x32 is'`).

  Returns:
    The (unbuilt) conv layer.

  Raises:
    ValueError: `'{subject} not a multiple of patch_size {patch_size}.'` if
      `height` or `width` is not a multiple of `patch_size`.
  """
  if height % patch_size or width % patch_size:
    raise ValueError(f'{subject} not a multiple of patch_size {patch_size}.')
  return tf_keras.layers.Conv2D(
      embed_dim, patch_size, strides=patch_size, padding='valid',
      kernel_initializer=linear_like_uniform(
          patch_size * patch_size * int(channels), embed_dim),
      name='patch_embed')


@tf_keras.utils.register_keras_serializable(package='univision')
class TransformerStack(tf_keras.layers.Layer):
  """`depth` pre-norm transformer blocks then a LayerNorm, on [B, L, D].

  With `final_norm=False` the closing LayerNorm is left out (R-MAE's region
  encoder, whose blocks are followed by pooling, not by a norm).
  """

  def __init__(self, depth: int, num_heads: int, mlp_ratio: float = 4.0,
               final_norm: bool = True, **kwargs):
    super().__init__(**kwargs)
    self._depth = depth
    self._num_heads = num_heads
    self._mlp_ratio = mlp_ratio
    self._final_norm = final_norm

  def build(self, input_shape):
    width = int(input_shape[-1])
    self._blocks = [
        nn_blocks.TransformerEncoderBlock(
            num_attention_heads=self._num_heads,
            inner_dim=int(width * self._mlp_ratio),
            inner_activation='gelu',  # exact, as torch.nn.GELU.
            output_dropout=0.0, attention_dropout=0.0, norm_first=True,
            norm_epsilon=1e-6, kernel_initializer='glorot_uniform',
            name=f'block_{i}') for i in range(self._depth)]
    self._norm = (tf_keras.layers.LayerNormalization(epsilon=1e-6,
                                                     name='layer_norm')
                  if self._final_norm else None)
    super().build(input_shape)

  def call(self, inputs, training=None):
    x = inputs
    for block in self._blocks:
      x = block(x, training=training)
    return self._norm(x) if self._norm else x

  def get_config(self) -> dict[str, Any]:
    return {**super().get_config(), 'depth': self._depth,
            'num_heads': self._num_heads, 'mlp_ratio': self._mlp_ratio,
            'final_norm': self._final_norm}


@tf_keras.utils.register_keras_serializable(package='univision')
class MAEEncoder(tf_keras.layers.Layer):
  """Patch embedding, fixed sin-cos positions, masking, cls token, ViT.

  Called on [B, H, W, 3] images it returns a dict: `latent` [B, 1 + K, D]
  (cls token first), `mask` [B, N] (1 = removed) and `ids_restore` [B, N];
  K = `mae_ops.num_kept(N, mask_ratio)`. With `mask_ratio=0` no token is
  removed or shuffled (the classifier case).
  """

  def __init__(self, embed_dim: int, depth: int, num_heads: int,
               patch_size: int, mask_ratio: float = 0.75,
               mlp_ratio: float = 4.0, **kwargs):
    super().__init__(**kwargs)
    mae_ops.num_kept(1, mask_ratio)  # Validates the ratio early.
    self._embed_dim = embed_dim
    self._depth = depth
    self._num_heads = num_heads
    self._patch_size = patch_size
    self._mask_ratio = mask_ratio
    self._mlp_ratio = mlp_ratio

  def build(self, input_shape):
    _, height, width, channels = input_shape
    p = self._patch_size
    self._patch_embed = patch_embedding(
        self._embed_dim, p, height, width, channels,
        f'{self.name}: input {height}x{width} is')
    self._cls_token = self.add_weight(
        'cls_token', [1, 1, self._embed_dim],
        initializer=tf_keras.initializers.RandomNormal(stddev=0.02))
    self._pos_embed = tf.constant(
        mae_ops.sincos_2d(self._embed_dim, height // p, width // p))[
            tf.newaxis]
    self._transformer = TransformerStack(
        self._depth, self._num_heads, self._mlp_ratio, name='transformer')
    super().build(input_shape)

  def call(self, inputs, training=None, noise: Optional[tf.Tensor] = None):
    x = self._patch_embed(inputs)
    x = tf.reshape(x, [-1, x.shape[1] * x.shape[2], self._embed_dim])
    pos_embed = tf.cast(self._pos_embed, x.dtype)
    x += pos_embed[:, 1:]
    if self._mask_ratio > 0.0:
      masking = mae_ops.random_masking(x, self._mask_ratio, noise)
      x, mask, ids_restore = masking.kept, masking.mask, masking.ids_restore
    else:
      mask = tf.zeros(tf.shape(x)[:2])
      ids_restore = tf.broadcast_to(tf.range(x.shape[1]), tf.shape(x)[:2])
    cls = tf.cast(self._cls_token, x.dtype) + pos_embed[:, :1]
    x = tf.concat([tf.tile(cls, [tf.shape(x)[0], 1, 1]), x], axis=1)
    return {'latent': self._transformer(x, training=training), 'mask': mask,
            'ids_restore': ids_restore}

  def get_config(self) -> dict[str, Any]:
    return {**super().get_config(), 'embed_dim': self._embed_dim,
            'depth': self._depth, 'num_heads': self._num_heads,
            'patch_size': self._patch_size, 'mask_ratio': self._mask_ratio,
            'mlp_ratio': self._mlp_ratio}


@tf_keras.utils.register_keras_serializable(package='univision')
class MAEDecoder(tf_keras.layers.Layer):
  """Linear to decoder width, mask tokens, unshuffle, positions, blocks.

  Called on `latent` [B, 1 + K, D] and `ids_restore` [B, N], returns
  per-patch pixel predictions [B, N, p * p * channels] (cls token dropped).
  With `predict=False` there is no prediction head: it returns the
  normalised features [B, 1 + N, decoder_dim] (cls token first), which is
  R-MAE's region memory (`univision.modeling.rmae`).
  """

  def __init__(self, grid_size: tuple[int, int], patch_size: int,
               decoder_dim: int = 512, depth: int = 8, num_heads: int = 16,
               channels: int = 3, mlp_ratio: float = 4.0,
               predict: bool = True, **kwargs):
    super().__init__(**kwargs)
    self._grid_size = tuple(grid_size)
    self._patch_size = patch_size
    self._decoder_dim = decoder_dim
    self._depth = depth
    self._num_heads = num_heads
    self._channels = channels
    self._mlp_ratio = mlp_ratio
    self._predict = predict

  @property
  def num_tokens(self) -> int:
    return self._grid_size[0] * self._grid_size[1]

  def build(self, input_shape):
    self._embed = tf_keras.layers.Dense(self._decoder_dim,
                                        kernel_initializer='glorot_uniform',
                                        name='decoder_embed')
    self._mask_token = self.add_weight(
        'mask_token', [1, 1, self._decoder_dim],
        initializer=tf_keras.initializers.RandomNormal(stddev=0.02))
    self._pos_embed = tf.constant(
        mae_ops.sincos_2d(self._decoder_dim, *self._grid_size))[tf.newaxis]
    self._transformer = TransformerStack(
        self._depth, self._num_heads, self._mlp_ratio, name='transformer')
    self._pred = tf_keras.layers.Dense(
        self._patch_size**2 * self._channels,
        kernel_initializer='glorot_uniform',
        name='decoder_pred') if self._predict else None
    super().build(input_shape)

  def call(self, latent, ids_restore, training=None):
    x = self._embed(latent)
    mask_tokens = tf.tile(tf.cast(self._mask_token, x.dtype),
                          [tf.shape(x)[0], self.num_tokens + 1 - x.shape[1], 1])
    shuffled = tf.concat([x[:, 1:], mask_tokens], axis=1)
    x = tf.concat([x[:, :1], tf.gather(shuffled, ids_restore, batch_dims=1)],
                  axis=1)
    x += tf.cast(self._pos_embed, x.dtype)
    x = self._transformer(x, training=training)
    return self._pred(x)[:, 1:] if self._pred else x

  def get_config(self) -> dict[str, Any]:
    return {**super().get_config(), 'grid_size': self._grid_size,
            'patch_size': self._patch_size, 'decoder_dim': self._decoder_dim,
            'depth': self._depth, 'num_heads': self._num_heads,
            'channels': self._channels, 'mlp_ratio': self._mlp_ratio,
            'predict': self._predict}


@tf_keras.utils.register_keras_serializable(package='univision')
class MaskedAutoencoder(tf_keras.Model):
  """MAE: `MAEEncoder` then `MAEDecoder` on [B, H, W, 3] images.

  Returns a dict: `predictions` [B, N, p * p * 3] and `mask` [B, N]
  (1 = removed; the loss is `mae_ops.reconstruction_loss` over those, with
  the model's `patch_size`).
  """

  def __init__(self, image_size: tuple[int, int], size: str = 'base',
               mask_ratio: float = 0.75, decoder_dim: int = 512,
               decoder_depth: int = 8, decoder_heads: int = 16,
               channels: int = 3, **kwargs):
    super().__init__(**kwargs)
    vit = get_vit_size(size)
    self._config = dict(image_size=tuple(image_size), size=size,
                        mask_ratio=mask_ratio, decoder_dim=decoder_dim,
                        decoder_depth=decoder_depth,
                        decoder_heads=decoder_heads, channels=channels)
    self.encoder = MAEEncoder(vit.embed_dim, vit.depth, vit.num_heads,
                              vit.patch_size, mask_ratio, name='encoder')
    self.decoder = MAEDecoder(
        (image_size[0] // vit.patch_size, image_size[1] // vit.patch_size),
        vit.patch_size, decoder_dim, decoder_depth, decoder_heads, channels,
        name='decoder')
    self.patch_size = vit.patch_size

  def call(self, inputs, training=None, noise: Optional[tf.Tensor] = None):
    encoded = self.encoder(inputs, training=training, noise=noise)
    predictions = self.decoder(encoded['latent'], encoded['ids_restore'],
                               training=training)
    return {'predictions': predictions, 'mask': encoded['mask']}

  @property
  def num_mask_units(self) -> int:
    """Patches per image, the positions the masking noise ranks."""
    return self.decoder.num_tokens

  @property
  def checkpoint_items(self) -> dict[str, tf.Module]:
    """The encoder, as the backbone a classifier initialises from."""
    return {'backbone': self.encoder}

  def get_config(self) -> dict[str, Any]:
    return {**self._config, 'name': self.name}

  @classmethod
  def from_config(cls, config, custom_objects=None):
    return cls(**config)
