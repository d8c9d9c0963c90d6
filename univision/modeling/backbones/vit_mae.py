"""The MAE ViT encoder as a classification backbone, registered as `vit_mae`.

`ViTMAE` *is* `univision.modeling.mae.MAEEncoder` with `mask_ratio=0` (no
patch removed or shuffled) that returns Model Garden endpoints instead of
the token sequence. Because it adds no variables or sub-layers, its
checkpoint object graph is exactly the encoder's, so

- an MAE checkpoint (`MaskedAutoencoder.checkpoint_items['backbone']` is the
  encoder) and
- a classification checkpoint of a `ViTMAE` (Model Garden's
  `ClassificationModel.checkpoint_items['backbone']`)

both load into it with `task.init_checkpoint` and
`task.init_checkpoint_modules: backbone`. That is how the MAWS stages
(MAE -> weakly supervised -> fine-tuning) hand weights on.

Endpoint '6' is [B, 1, 1, D]: the pooled tokens after the encoder's final
LayerNorm, so that Model Garden's `ClassificationModel` (global average pool
of the largest key, dropout, Dense) is a linear head on them. `pooling`
chooses the tokens: 'mean' (default) averages the patch tokens, as MAE's
fine-tuning recipe does (`global_pool`, which He et al. found slightly
better than the class token); the class token gets no direct training
signal in MAE pretraining, where the loss is on patches only. 'token' takes
the class token, the ViT / timm default (`global_pool='token'`).
"""
from typing import Any

import tensorflow as tf, tf_keras
from official.modeling import hyperparams
from official.vision.modeling.backbones import factory

from univision.modeling import mae
from univision.modeling.backbones import backbone_config as backbone_config_lib

HEAD_ENDPOINT = '6'
POOLINGS = ('mean', 'token')


@tf_keras.utils.register_keras_serializable(package='univision')
class ViTMAE(mae.MAEEncoder):
  """A ViT without masking that returns {'6': [B, 1, 1, D] features}."""

  def __init__(self, embed_dim: int, depth: int, num_heads: int,
               patch_size: int, mlp_ratio: float = 4.0,
               pooling: str = 'mean', **kwargs):
    """Builds the backbone (its weights are built on the first call).

    Args:
      embed_dim: An `int` token width D.
      depth: An `int` number of transformer blocks.
      num_heads: An `int` number of attention heads.
      patch_size: An `int` patch side in pixels.
      mlp_ratio: A `float` MLP width over D.
      pooling: A `str`, 'mean' (patch tokens) or 'token' (class token).
      **kwargs: Keyword arguments for `tf_keras.layers.Layer`.

    Raises:
      ValueError: for an unknown `pooling`.
    """
    if pooling not in POOLINGS:
      raise ValueError(f'pooling={pooling!r} is not one of {POOLINGS}.')
    super().__init__(embed_dim, depth, num_heads, patch_size, mask_ratio=0.0,
                     mlp_ratio=mlp_ratio, **kwargs)
    self._pooling = pooling

  @property
  def output_specs(self) -> dict[str, tf.TensorShape]:
    """The endpoint shapes, as Model Garden's backbones report them."""
    return {HEAD_ENDPOINT: tf.TensorShape([None, 1, 1, self._embed_dim])}

  def call(self, inputs, training=None):
    latent = super().call(inputs, training=training)['latent']
    if self._pooling == 'mean':
      pooled = tf.reduce_mean(latent[:, 1:], axis=1)
    else:
      pooled = latent[:, 0]
    return {HEAD_ENDPOINT: pooled[:, tf.newaxis, tf.newaxis, :]}

  def get_config(self) -> dict[str, Any]:
    config = {**super().get_config(), 'pooling': self._pooling}
    del config['mask_ratio']  # Always 0.
    return config


@factory.register_backbone_builder('vit_mae')
def build_vit_mae(
    input_specs: tf_keras.layers.InputSpec,
    backbone_config: hyperparams.Config,
    norm_activation_config: hyperparams.Config,
    l2_regularizer: tf_keras.regularizers.Regularizer | None = None,
) -> ViTMAE:
  """Builds a `ViTMAE` from a `univision` backbone config.

  `norm_activation_config` is not used: the norms are LayerNorms with
  epsilon 1e-6 and the activation is GELU, as in MAE. Weight decay comes
  from the optimizer (AdamW), as in MAE's fine-tuning, so an L2 regularizer
  is refused rather than ignored.

  Raises:
    ValueError: naming `backbone.vit_mae.*` for an unknown size or pooling,
      or an input size that is not a multiple of the patch; naming
      `losses.l2_weight_decay` if it is set.
  """
  del norm_activation_config
  if l2_regularizer is not None:
    raise ValueError('losses.l2_weight_decay is not supported with backbone '
                     'vit_mae; use the optimizer\'s weight decay (AdamW).')
  cfg = backbone_config_lib.chosen(backbone_config, 'vit_mae')
  if cfg.size not in mae.VIT_SIZES:
    raise ValueError(f'backbone.vit_mae.size={cfg.size!r} is unknown; known: '
                     f'{sorted(mae.VIT_SIZES)}.')
  if cfg.pooling not in POOLINGS:
    raise ValueError(f'backbone.vit_mae.pooling={cfg.pooling!r} is not one '
                     f'of {POOLINGS}.')
  size = mae.VIT_SIZES[cfg.size]
  height, width = input_specs.shape[1:3]
  if height is None or width is None or height % size.patch_size or (
      width % size.patch_size):
    raise ValueError(f'model.input_size {height}x{width} must be a multiple '
                     f'of {size.patch_size}, the patch of '
                     f'backbone.vit_mae.size={cfg.size!r}.')
  return ViTMAE(size.embed_dim, size.depth, size.num_heads, size.patch_size,
                pooling=cfg.pooling, name='vit_mae')
