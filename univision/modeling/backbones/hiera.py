"""Hiera backbone (tiny ... huge), registered as `hiera`.

Ryali et al., "Hiera: A Hierarchical Vision Transformer without the
Bells-and-Whistles", ICML 2023 (arXiv 2306.00989). Architectures:
`hiera_specs`; layers: `hiera_tokens` (patch embedding, unroll / reroll,
mask-unit dropping) and `hiera_blocks` (mask-unit attention, q-pooling).

Pipeline: 7x7/4 patch embedding + absolute position embedding -> unroll ->
blocks -> (per stage) reroll. The position embedding is sized from the
input, so the input size is fixed at construction and must be a multiple of
`4 * q_stride**3` (32) per side.

Endpoints, as for Model Garden's backbones: levels '2'..'5' are the rerolled
[B, H, W, C] maps after stages 1..4 (strides 4, 8, 16, 32 with q_pool=3; a
stage after the last pooling keeps the previous stride), listed in
`output_specs`. With `include_head`, key '6' is [B, 1, 1, C] =
LayerNorm(mean over tokens), so that Model Garden's `ClassificationModel`
(global average pool of the largest key, dropout, Dense) is Hiera's head
(mean-pool -> LayerNorm -> Linear).

MAE: `backbone(images, keep_mask=keep)` with `keep` a [B, num_mask_units] bool
tensor (True = keep, the same count K per image, units in raster order of
the `H/32 x W/32` grid) drops the masked units right after unrolling, so the
blocks only see kept tokens (sparse, like the official MAE), after zeroing
the patch embedding's *input* pixels under masked units (as the reference's
masked conv does). It then returns levels '2'..'5' as [B, K, u, u, C]: each
kept unit's tokens at that stage as a u x u map (u = 8, 4, 2, 1 with
q_pool=3; 8, 4, 2, 2 with q_pool=2), units in raster order; no head.
`hiera_tokens.random_keep_mask` draws such masks.

Differences from the reference: Keras' `mask` argument is reused for the
keep mask (the backbone supports no Keras masking); the classifier is Model
Garden's `Dense` (timm scales its initial weights by 1e-3, which is an
initialisation choice of the task, not part of the backbone).
"""
import collections
from typing import Any

import tensorflow as tf, tf_keras
from official.modeling import hyperparams
from official.vision.modeling.backbones import factory

from univision.modeling.backbones import backbone_config as backbone_config_lib
from univision.modeling.backbones import hiera_specs as specs
from univision.modeling.layers import conv_norm
from univision.modeling.layers import hiera_blocks
from univision.modeling.layers import hiera_tokens

HEAD_ENDPOINT = '6'
_NUM_LEVELS = specs.NUM_STAGES - 1  # Unroll levels: one per transition.

_Parts = collections.namedtuple(
    '_Parts', ['patch_embed', 'unroll', 'blocks', 'rerolls', 'head'])


def check_input_size(height: int | None, width: int | None,
                     q_stride: int = 2) -> tuple[int, int]:
  """(height, width) if Hiera can take them, else a `ValueError`."""
  multiple = hiera_tokens.PATCH_STRIDE * q_stride**_NUM_LEVELS
  if height is None or width is None or height % multiple or width % multiple:
    raise ValueError(
        f'Hiera input size {height}x{width}: both sides must be fixed '
        f'multiples of {multiple} (patch stride {hiera_tokens.PATCH_STRIDE} x '
        f'q_stride {q_stride}**{_NUM_LEVELS}), e.g. 224.')
  return height, width


def _blocks(rows: tuple[specs.BlockSpec, ...], drop_path_rate: float,
            kernel_regularizer) -> list[hiera_blocks.HieraBlock]:
  """One block per row; stochastic depth grows linearly from 0."""
  last = max(len(rows) - 1, 1)
  return [hiera_blocks.HieraBlock(
      row.dim, row.num_heads, q_stride=row.q_stride,
      mask_unit_size=row.mask_unit_size, use_mask_unit_attn=row.mask_unit_attn,
      stochastic_depth_drop_rate=drop_path_rate * index / last,
      kernel_regularizer=kernel_regularizer, name=f'block{index:02d}')
          for index, row in enumerate(rows)]


def _stage_ends_and_rerolls(
    rows: tuple[specs.BlockSpec, ...], height: int, width: int, q_stride: int
) -> tuple[dict[int, str], dict[str, hiera_tokens.Reroll]]:
  """Each stage's last block index -> level, and each level's `Reroll`."""
  stage_ends, rerolls = {}, {}
  pools, stride = 0, hiera_tokens.PATCH_STRIDE
  for index, row in enumerate(rows):
    if row.q_stride > 1:
      pools, stride = pools + 1, stride * q_stride
    if index + 1 == len(rows) or rows[index + 1].stage != row.stage:
      level = str(row.stage + 1)
      stage_ends[index] = level
      rerolls[level] = hiera_tokens.Reroll(
          height // stride, width // stride, q_stride, _NUM_LEVELS - pools,
          name=f'reroll{level}')
  return stage_ends, rerolls


def _forward(parts: _Parts, stage_ends: dict[int, str], images,
             keep: tf.Tensor | None = None,
             unit_grid: tuple[int, int] | None = None,
             training=None) -> dict[str, tf.Tensor]:
  """The network on `images`: dense (keep=None) or on the kept mask units."""
  unit_mask = None
  if keep is not None:
    unit_mask = tf.reshape(keep, [-1, *unit_grid])
  x = parts.unroll(parts.patch_embed(images, unit_mask=unit_mask))
  if keep is not None:
    x = hiera_tokens.keep_mask_units(x, keep)
  outputs = {}
  for index, block in enumerate(parts.blocks):
    x = block(x, training=training)
    if index in stage_ends:
      level = stage_ends[index]
      outputs[level] = parts.rerolls[level](x, per_unit=keep is not None)
  if keep is None and parts.head:
    for layer in parts.head:
      x = layer(x)
    outputs[HEAD_ENDPOINT] = x
  return outputs


@tf_keras.utils.register_keras_serializable(package='univision')
class Hiera(tf_keras.Model):
  """Hiera backbone returning multi-level endpoints and the head."""

  def __init__(self,
               model_id: str = 'hiera_tiny',
               input_specs: tf_keras.layers.InputSpec = tf_keras.layers
               .InputSpec(shape=[None, 224, 224, 3]),
               q_pool: int = 3,
               q_stride: int = 2,
               mask_unit_size: int = 8,
               drop_path_rate: float = 0.0,
               include_head: bool = True,
               kernel_regularizer: tf_keras.regularizers.Regularizer
               | None = None,
               **kwargs):
    """Builds the backbone.

    Args:
      model_id: A `str`, one of `hiera_specs.MODEL_SPECS`.
      input_specs: A `tf_keras.layers.InputSpec` with a fixed image size, a
        multiple of `4 * q_stride**3` per side.
      q_pool: An `int` number of q-pooling stage transitions (3 for
        classification, 2 for the MAE encoder).
      q_stride: An `int` q-pooling stride per side.
      mask_unit_size: An `int` mask unit side in stage-1 tokens (masking
        with `call(..., keep_mask=...)` needs `q_stride**3`, the default 8).
      drop_path_rate: A `float` stochastic depth rate, growing linearly from
        0 at the first block to this value at the last.
      include_head: A `bool`, whether to build endpoint '6' (pool + norm).
      kernel_regularizer: A `tf_keras.regularizers.Regularizer` or None, for
        every conv and dense kernel.
      **kwargs: Keyword arguments for `tf_keras.Model`.

    Raises:
      ValueError: for an unknown `model_id`, an input size Hiera cannot take,
        or an unsupported `q_pool` / `mask_unit_size`.
    """
    spec = specs.get_model_spec(model_id)
    rows = specs.block_specs(spec, q_pool, q_stride, mask_unit_size)
    height, width = check_input_size(*input_specs.shape[1:3], q_stride)
    kernel_regularizer = tf_keras.regularizers.get(kernel_regularizer)
    self._config_dict = {
        'model_id': model_id,
        'input_specs': input_specs,
        'q_pool': q_pool,
        'q_stride': q_stride,
        'mask_unit_size': mask_unit_size,
        'drop_path_rate': drop_path_rate,
        'include_head': include_head,
        'kernel_regularizer': conv_norm.serialize_regularizer(
            kernel_regularizer),
    }
    stage_ends, rerolls = _stage_ends_and_rerolls(rows, height, width,
                                                  q_stride)
    head = ()
    if include_head:
      head = (tf_keras.layers.GlobalAveragePooling1D(name='head_pool'),
              tf_keras.layers.LayerNormalization(
                  epsilon=hiera_blocks.LAYER_NORM_EPSILON, name='head_norm'),
              tf_keras.layers.Reshape((1, 1, rows[-1].dim),
                                      name='head_reshape'))
    parts = _Parts(
        hiera_tokens.HieraPatchEmbedding(
            spec.embed_dim, kernel_regularizer=kernel_regularizer,
            name='patch_embed'),
        hiera_tokens.Unroll(q_stride, _NUM_LEVELS, name='unroll'),
        _blocks(rows, drop_path_rate, kernel_regularizer), rerolls, head)

    inputs = tf_keras.Input(shape=(height, width, input_specs.shape[-1]))
    outputs = _forward(parts, stage_ends, inputs)
    super().__init__(inputs=inputs, outputs=outputs, **kwargs)
    self._output_specs = {level: outputs[level].shape
                          for level in rerolls}
    self._model_spec = spec
    self._block_specs = rows
    self._parts = parts
    self._stage_ends = stage_ends
    unit_pixels = hiera_tokens.PATCH_STRIDE * mask_unit_size
    self._unit_grid = (height // unit_pixels, width // unit_pixels)

  @property
  def model_spec(self) -> specs.ModelSpec:
    return self._model_spec

  @property
  def block_specs(self) -> tuple[specs.BlockSpec, ...]:
    """One row per block, in order (see `hiera_specs.block_specs`)."""
    return self._block_specs

  @property
  def blocks(self) -> list[hiera_blocks.HieraBlock]:
    return list(self._parts.blocks)

  @property
  def num_mask_units(self) -> int:
    """Mask units per image: the `H/32 x W/32` grid at the default sizes."""
    return self._unit_grid[0] * self._unit_grid[1]

  @property
  def output_specs(self) -> dict[str, tf.TensorShape]:
    """Shapes of the feature levels '2'..'5' (the head is not a level)."""
    return self._output_specs

  def call(self, inputs, training=None, keep_mask=None):
    """Runs the backbone, densely or on the kept mask units only.

    Args:
      inputs: [B, H, W, 3] images of the construction size.
      training: Whether stochastic depth is active.
      keep_mask: None, or a [B, num_mask_units] bool keep mask (True =
        keep, the same count K per image, units in raster order).

    Returns:
      Without `keep_mask`: levels '2'..'5' as [B, h, w, C] maps and, with the
      head, '6' as [B, 1, 1, C]. With `keep_mask`: levels '2'..'5' as
      [B, K, u, u, C] per kept unit (see the module docstring), no head.

    Raises:
      ValueError: for a mask of the wrong shape or dtype, or if this
        backbone's mask unit is not the unrolled layout's (q_stride**3).
      tf.errors.InvalidArgumentError: if images keep different counts.
    """
    if keep_mask is None:
      return super().call(inputs, training=training)
    config = self._config_dict
    if config['mask_unit_size'] != config['q_stride']**_NUM_LEVELS:
      raise ValueError(
          f'Masking needs mask_unit_size == q_stride**{_NUM_LEVELS} (the '
          'unrolled layout ends with that unit grid); this backbone has '
          f'{config["mask_unit_size"]}.')
    keep = tf.convert_to_tensor(keep_mask)
    if keep.dtype != tf.bool or keep.shape.rank != 2 or (
        keep.shape[1] != self.num_mask_units):
      raise ValueError(
          f'keep_mask must be [batch, {self.num_mask_units}] bool (True = keep, '
          f'mask units in raster order); got {keep.dtype.name} '
          f'{keep.shape}.')
    counts = tf.reduce_sum(tf.cast(keep, tf.int32), axis=1)
    with tf.control_dependencies([tf.debugging.assert_equal(
        counts, counts[0],
        message='Every image must keep the same number of mask units.')]):
      keep = tf.identity(keep)
    return _forward(self._parts, self._stage_ends, inputs, keep=keep,
                    unit_grid=self._unit_grid, training=training)

  def get_config(self) -> dict[str, Any]:
    return backbone_config_lib.serialize_input_specs(self._config_dict)

  @classmethod
  def from_config(cls, config, custom_objects=None):
    return cls(**backbone_config_lib.deserialize_input_specs(config))


@factory.register_backbone_builder('hiera')
def build_hiera(
    input_specs: tf_keras.layers.InputSpec,
    backbone_config: hyperparams.Config,
    norm_activation_config: hyperparams.Config,
    l2_regularizer: tf_keras.regularizers.Regularizer | None = None,
) -> tf_keras.Model:
  """Builds Hiera from a `univision` backbone config.

  `norm_activation_config` is not used: Hiera's norms are LayerNorms with a
  fixed epsilon of 1e-6 and its activation is GELU.
  """
  del norm_activation_config
  cfg = backbone_config_lib.chosen(backbone_config, 'hiera')
  specs.get_model_spec(cfg.model_id, key='backbone.hiera.model_id')
  return Hiera(
      model_id=cfg.model_id,
      input_specs=input_specs,
      q_pool=cfg.q_pool,
      q_stride=cfg.q_stride,
      mask_unit_size=cfg.mask_unit_size,
      drop_path_rate=cfg.drop_path_rate,
      include_head=cfg.include_head,
      kernel_regularizer=l2_regularizer)
