"""R-MAE: a ViT MAE plus a masked region autoencoder (regions as queries).

Nguyen et al., "R-MAE: Regions Meet Masked Autoencoders" (ICLR 2024);
reference: facebookresearch/r-mae `pretrain/module/rmae.py`
(`RegionQueryRMAE`) and `pretrain/module/layers.py`
(`DecoderBlockWithExpansion`). Model Garden has no R-MAE, so this is ours,
built on the ViT MAE of `univision.modeling.mae`.

The model has two branches that share one random mask:

* Pixel branch: the unchanged MAE (`MAEEncoder` on the visible patches,
  `MAEDecoder` predicting the pixels of the removed ones).
* Region branch: k binary region maps per image. Each map is patchified by
  a 1-channel patch embedding, gets fixed sin-cos positions, keeps exactly
  the patches the pixel branch keeps (`ids_keep` of the same masking), runs
  through a 1-block transformer and is mean-pooled to one query vector per
  region (`RegionEncoder`). The memory the queries read is the pixel
  encoder's output, linearly projected to the region width, completed with
  mask tokens and positions and passed through 8 transformer blocks
  (`MAEDecoder` without its head). The region decoder (`RegionDecoder`) lets
  the k queries attend to each other, then adds each query to every memory
  position and maps the sum to 16x16 mask logits for each region and patch.

Interaction: information flows only from the pixel branch to the region
branch (pixel-encoder features are the region decoder's memory; the pixel
encoder never sees regions). That is what the released code does and what
the paper calls "RAE <- MAE", its default R-MAE (the paper's other variants,
RAE -> MAE and RAE <-> MAE, are not in the released code and not here).

Loss (`region_loss`): binary cross-entropy with logits per pixel, averaged
over the pixels of a patch and over the k regions, then over the removed
patches only; the task adds it to the MAE loss with a weight (1.0 in the
reference). The reference's optional background re-weighting
(`bg_loss_weight`, 1.0 = off in every released config) is not implemented.
"""
from typing import Any, Optional

import tensorflow as tf, tf_keras

from univision.modeling import mae
from univision.modeling import mae_ops


@tf_keras.utils.register_keras_serializable(package='univision')
class RegionEncoder(tf_keras.layers.Layer):
  """Region maps -> one query vector per region, from visible patches only.

  Called on `regions` [B, k, H, W] (0/1 maps) and `ids_keep` [B, K] (the
  pixel branch's kept patch indices), returns [B, k, output_dim]: per region,
  the mean over its K visible patch tokens after the transformer, then
  LayerNorm and a linear map to the region decoder's width.
  """

  def __init__(self, patch_size: int, embed_dim: int = 128, depth: int = 1,
               num_heads: int = 8, output_dim: int = 128,
               mlp_ratio: float = 4.0, **kwargs):
    super().__init__(**kwargs)
    self._patch_size = patch_size
    self._embed_dim = embed_dim
    self._depth = depth
    self._num_heads = num_heads
    self._output_dim = output_dim
    self._mlp_ratio = mlp_ratio

  def build(self, input_shape):
    _, _, height, width = input_shape
    p = self._patch_size
    self._patch_embed = mae.patch_embedding(
        self._embed_dim, p, height, width, 1,
        f'{self.name}: region maps {height}x{width} are')
    self._pos_embed = tf.constant(mae_ops.sincos_2d(
        self._embed_dim, height // p, width // p, cls_token=False))
    self._transformer = mae.TransformerStack(
        self._depth, self._num_heads, self._mlp_ratio, final_norm=False,
        name='transformer')
    self._proj_norm = tf_keras.layers.LayerNormalization(
        epsilon=1e-6, name='proj_layer_norm')
    self._proj = tf_keras.layers.Dense(self._output_dim,
                                       kernel_initializer='glorot_uniform',
                                       name='proj')
    super().build(input_shape)

  def call(self, regions, ids_keep, training=None):
    _, num_regions, height, width = regions.shape
    x = tf.reshape(regions, [-1, height, width, 1]) - 0.5  # As the reference.
    x = self._patch_embed(x)
    tokens = x.shape[1] * x.shape[2]
    x = tf.reshape(x, [-1, num_regions, tokens, self._embed_dim])
    x += tf.cast(self._pos_embed, x.dtype)
    x = tf.gather(x, ids_keep, axis=2, batch_dims=1)  # [B, k, K, E].
    kept = ids_keep.shape[1]
    x = self._transformer(tf.reshape(x, [-1, kept, self._embed_dim]),
                          training=training)
    x = tf.reduce_mean(tf.reshape(x, [-1, num_regions, kept,
                                      self._embed_dim]), axis=2)
    return self._proj(self._proj_norm(x))

  def get_config(self) -> dict[str, Any]:
    return {**super().get_config(), 'patch_size': self._patch_size,
            'embed_dim': self._embed_dim, 'depth': self._depth,
            'num_heads': self._num_heads, 'output_dim': self._output_dim,
            'mlp_ratio': self._mlp_ratio}


@tf_keras.utils.register_keras_serializable(package='univision')
class RegionDecoder(tf_keras.layers.Layer):
  """Region queries x memory -> per-region, per-patch mask logits.

  The reference's `DecoderBlockWithExpansion` plus its `region_pred`:
  pre-norm self-attention among the k queries (with residual), then the
  "expansion" `x[k, n] = query_k + Linear(memory_n)`, a LayerNorm and an MLP
  whose hidden width equals the input width (no residual), then GELU and a
  linear map to p * p logits. Called on `queries` [B, k, D] and `memory`
  [B, N, D], returns [B, k, N, p * p].
  """

  def __init__(self, patch_size: int, num_heads: int = 8, **kwargs):
    super().__init__(**kwargs)
    self._patch_size = patch_size
    self._num_heads = num_heads

  def build(self, input_shape):
    width = int(input_shape[-1])
    if width % self._num_heads:
      raise ValueError(f'{self.name}: width {width} is not divisible by '
                       f'num_heads {self._num_heads}.')
    dense = lambda units, name, activation=None: tf_keras.layers.Dense(
        units, activation=activation, kernel_initializer='glorot_uniform',
        name=name)
    self._attention_norm = tf_keras.layers.LayerNormalization(
        epsilon=1e-6, name='attention_layer_norm')
    self._attention = tf_keras.layers.MultiHeadAttention(
        self._num_heads, width // self._num_heads,
        kernel_initializer='glorot_uniform', name='self_attention')
    self._memory_proj = dense(width, 'memory_proj')
    self._mlp_norm = tf_keras.layers.LayerNormalization(
        epsilon=1e-6, name='mlp_layer_norm')
    self._mlp_in = dense(width, 'mlp_in',
                         lambda x: tf.nn.gelu(x, approximate=False))
    self._mlp_out = dense(width, 'mlp_out')
    self._pred = dense(self._patch_size**2, 'pred')
    super().build(input_shape)

  def call(self, queries, memory, training=None):
    x = self._attention_norm(queries)
    x = queries + self._attention(x, x, training=training)
    x = x[:, :, tf.newaxis] + self._memory_proj(memory)[:, tf.newaxis]
    x = self._mlp_out(self._mlp_in(self._mlp_norm(x)))
    return self._pred(tf.nn.gelu(x, approximate=False))

  def get_config(self) -> dict[str, Any]:
    return {**super().get_config(), 'patch_size': self._patch_size,
            'num_heads': self._num_heads}


@tf_keras.utils.register_keras_serializable(package='univision')
class RegionMaskedAutoencoder(mae.MaskedAutoencoder):
  """R-MAE: `MaskedAutoencoder` plus the region branch, one shared mask.

  Called on a dict with `images` [B, H, W, 3] and `regions` [B, k, H, W]
  (0/1 maps), returns a dict: `predictions` [B, N, p * p * 3], `mask`
  [B, N] (1 = removed, for both branches) and `region_logits`
  [B, k, N, p * p]. Defaults are the released ViT-B config
  (`base_rmae.yaml`); `num_regions` there is 0 and must be set (8 here).
  """

  def __init__(self, image_size: tuple[int, int], size: str = 'base',
               mask_ratio: float = 0.75, decoder_dim: int = 512,
               decoder_depth: int = 8, decoder_heads: int = 16,
               num_regions: int = 8, region_enc_dim: int = 128,
               region_enc_depth: int = 1, region_enc_heads: int = 8,
               region_dec_dim: int = 128, region_dec_heads: int = 8,
               region_cross_depth: int = 8, **kwargs):
    super().__init__(image_size, size, mask_ratio, decoder_dim,
                     decoder_depth, decoder_heads, **kwargs)
    if num_regions < 1:
      raise ValueError(f'num_regions must be >= 1, got {num_regions}.')
    self._config.update(
        num_regions=num_regions, region_enc_dim=region_enc_dim,
        region_enc_depth=region_enc_depth, region_enc_heads=region_enc_heads,
        region_dec_dim=region_dec_dim, region_dec_heads=region_dec_heads,
        region_cross_depth=region_cross_depth)
    self.num_regions = num_regions
    self.region_encoder = RegionEncoder(
        self.patch_size, region_enc_dim, region_enc_depth, region_enc_heads,
        region_dec_dim, name='region_encoder')
    grid = (image_size[0] // self.patch_size, image_size[1] // self.patch_size)
    self.region_memory = mae.MAEDecoder(
        grid, self.patch_size, region_dec_dim, region_cross_depth,
        region_dec_heads, predict=False, name='region_memory')
    self.region_decoder = RegionDecoder(self.patch_size, region_dec_heads,
                                        name='region_decoder')

  def call(self, inputs, training=None, noise: Optional[tf.Tensor] = None):
    encoded = self.encoder(inputs['images'], training=training, noise=noise)
    latent, ids_restore = encoded['latent'], encoded['ids_restore']
    predictions = self.decoder(latent, ids_restore, training=training)
    # The kept patches are the first K of the shuffle that ids_restore undoes.
    kept = latent.shape[1] - 1
    ids_keep = tf.argsort(ids_restore, axis=1, stable=True)[:, :kept]
    queries = self.region_encoder(inputs['regions'], ids_keep,
                                  training=training)
    memory = self.region_memory(latent, ids_restore, training=training)
    # The cls position only served as context in the memory's blocks; its
    # logits would be dropped (per-position ops), so it is dropped first.
    logits = self.region_decoder(queries, memory[:, 1:], training=training)
    return {'predictions': predictions, 'mask': encoded['mask'],
            'region_logits': logits}


def region_loss(regions: tf.Tensor, logits: tf.Tensor, mask: tf.Tensor,
                patch_size: int) -> tf.Tensor:
  """BCE-with-logits of the region maps, over the removed patches only.

  Args:
    regions: [B, k, H, W] 0/1 region maps.
    logits: [B, k, N, p * p] `region_logits` of the model.
    mask: [B, N], 1 for removed patches.
    patch_size: An `int` patch side p.

  Returns:
    A float32 scalar: per patch the BCE averaged over its p * p pixels and
    the k regions, then averaged over the removed patches (the reference's
    `RegionQueryRMAE._forward_region_loss` and `forward_loss`).
  """
  _, num_regions, height, width = regions.shape
  targets = mae_ops.patchify(
      tf.reshape(tf.cast(regions, tf.float32), [-1, height, width, 1]),
      patch_size)
  targets = tf.reshape(targets, [-1, num_regions, *targets.shape[1:]])
  bce = tf.nn.sigmoid_cross_entropy_with_logits(
      labels=targets, logits=tf.cast(logits, tf.float32))
  per_patch = tf.reduce_mean(bce, axis=[1, 3])  # [B, N].
  mask = tf.cast(mask, tf.float32)
  return tf.reduce_sum(per_patch * mask) / tf.reduce_sum(mask)
