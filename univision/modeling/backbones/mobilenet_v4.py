"""MobileNetV4 backbone (Conv-S/M/L, Hybrid-M/L), registered as `mobilenet_v4`.

Qin et al., "MobileNetV4: Universal Models for the Mobile Ecosystem",
ECCV 2024 (arXiv 2404.10518). Architectures: the built-in tables of
`mobilenet_v4_specs` (by `model_id`), or any table given as a `ModelSpec` or
read from a spec file (`mobilenet_v4_spec_file`, e.g. a NAS result).

Why not Model Garden's own `mobilenet` backbone: its Mobile MQA assumes square
maps, it has no PyTorch-style padding (so timm's ImageNet weights cannot load)
and its hybrid blocks cannot be quantization-aware trained. This backbone is
built from univision's layers, which fix those, and keeps Model Garden's
interface: a functional `tf_keras.Model` returning a dict of endpoints.

Endpoints: levels '2'..'5' are the last feature maps at strides 4, 8, 16, 32
(listed in `output_specs`, for FPN-style decoders); key '6' is the 1x1x1280
output of the classification head, which Model Garden's `ClassificationModel`
picks as the largest key (left out with `include_head=False`).
"""
from typing import Any

import tensorflow as tf, tf_keras
from official.modeling import hyperparams
from official.vision.modeling.backbones import factory

from univision.modeling.backbones import backbone_config as backbone_config_lib
from univision.modeling.backbones import mobilenet_v4_spec_file as spec_file
from univision.modeling.backbones import mobilenet_v4_specs as specs
from univision.modeling.layers import conv_norm
from univision.modeling.layers import fused_ib
from univision.modeling.layers import mobile_mqa
from univision.modeling.layers import uib

HEAD_ENDPOINT = '6'
_MIN_LEVEL, _MAX_LEVEL = 2, 5


def resolve_model_spec(model_id: str = '',
                       model_spec: specs.ModelSpec | dict[str, Any] | None
                       = None, spec_path: str = '') -> specs.ModelSpec:
  """The checked block table of an architecture choice: the one place that
  turns a model name, a table or a spec file into a `ModelSpec`.

  Args:
    model_id: A built-in architecture (`mobilenet_v4_specs.MODEL_SPECS`), or
      with `model_spec` / `spec_path` only a label for that table.
    model_spec: A table that is not built in: a `ModelSpec`, or its
      spec-file mapping (as `get_config` writes it).
    spec_path: A spec file (`mobilenet_v4_spec_file`), e.g. a NAS result.

  Returns:
    The table.

  Raises:
    ValueError: for an unknown `model_id` (naming it and the known ids),
      both a `model_spec` and a `spec_path`, or a bad table or file (a
      `SpecFileError` naming the file or table, the row and the key).
  """
  if spec_path:
    if model_spec is not None:
      raise ValueError(f'MobileNetV4 {model_id!r}: give model_spec or '
                       f'spec_file, not both (spec_file={spec_path!r}).')
    return spec_file.read(spec_path)
  if model_spec is not None:  # Checked like a spec file (stride 32, ...).
    if isinstance(model_spec, specs.ModelSpec):
      model_spec = spec_file.to_dict(model_spec)
    return spec_file.from_dict(model_spec,
                               f'MobileNetV4 {model_id!r} model_spec')
  return specs.get_model_spec(model_id)


def _drop_rate(rate: float, flat: bool, index: int, num_blocks: int) -> float:
  """Stochastic depth rate of block `index`: flat, or growing linearly."""
  return rate if flat else rate * index / num_blocks


@tf_keras.utils.register_keras_serializable(package='univision')
class MobileNetV4(tf_keras.Model):
  """MobileNetV4 backbone returning multi-level endpoints and the head."""

  def __init__(self,
               model_id: str = 'MobileNetV4ConvSmall',
               input_specs: tf_keras.layers.InputSpec = tf_keras.layers
               .InputSpec(shape=[None, None, None, 3]),
               padding: str = 'same',
               stochastic_depth_drop_rate: float = 0.0,
               flat_stochastic_depth_drop_rate: bool = True,
               include_head: bool = True,
               kernel_initializer: str = 'VarianceScaling',
               kernel_regularizer: tf_keras.regularizers.Regularizer
               | None = None,
               use_sync_bn: bool = False,
               norm_momentum: float = 0.99,
               norm_epsilon: float = 0.001,
               model_spec: specs.ModelSpec | dict[str, Any] | None = None,
               spec_file: str = '',
               output_stride: int = 0,
               **kwargs):
    """Builds the backbone.

    Args:
      model_id: A `str`, one of `mobilenet_v4_specs.MODEL_SPECS`; with
        `model_spec` or `spec_file` only a label of that table (a name, not
        a path; may be '').
      input_specs: A `tf_keras.layers.InputSpec` of the input images.
      padding: A `str`, `'same'` (TensorFlow) or `'symmetric'` (PyTorch, as
        timm's weights need).
      stochastic_depth_drop_rate: A `float` stochastic depth rate.
      flat_stochastic_depth_drop_rate: A `bool`; if False the rate grows
        linearly from 0 at the first block to the given rate at the last.
      include_head: A `bool`, whether to build the classification head
        (endpoint '6'); dense tasks need only levels '2'..'5'.
      kernel_initializer: A `str` kernel initializer name.
      kernel_regularizer: A `tf_keras.regularizers.Regularizer` or None.
      use_sync_bn: A `bool`, whether to use synchronized batch norm.
      norm_momentum: A `float` batch norm momentum.
      norm_epsilon: A `float` batch norm epsilon.
      model_spec: A table that is not built in: a `ModelSpec`, or its
        spec-file mapping (`mobilenet_v4_spec_file.to_dict`, as `get_config`
        writes it). None builds `model_id`'s table.
      spec_file: A spec file to read the table from (e.g. a NAS result);
        `get_config` then holds the table itself, not the path.
      output_stride: 0 for the table's strides (32), else the stride at
        which the blocks stop downsampling (`specs.with_output_stride`: no
        dilation); the endpoints are then the levels up to its own.
      **kwargs: Keyword arguments for `tf_keras.Model`.

    Raises:
      ValueError: for an unknown `model_id` or `padding`, or a bad
        `model_spec` or `spec_file` (see `resolve_model_spec`).
    """
    spec = resolve_model_spec(model_id, model_spec, spec_file)
    table = spec  # The full-stride table, for `get_config`.
    if output_stride:
      spec = specs.with_output_stride(spec, output_stride)
    conv_kwargs = conv_norm.conv_norm_kwargs(
        padding, kernel_initializer, kernel_regularizer, use_sync_bn,
        norm_momentum, norm_epsilon)
    self._config_dict = {
        'model_id': model_id,
        'input_specs': input_specs,
        'stochastic_depth_drop_rate': stochastic_depth_drop_rate,
        'flat_stochastic_depth_drop_rate': flat_stochastic_depth_drop_rate,
        'include_head': include_head,
        'output_stride': output_stride,
        **conv_norm.serialize_conv_norm_kwargs(conv_kwargs),
    }

    inputs = tf_keras.Input(shape=input_specs.shape[1:])
    x = inputs
    stride = 1
    level_outputs = {}
    blocks = []
    num_blocks = len(spec.blocks)
    for index, block_spec in enumerate(spec.blocks):
      drop_rate = _drop_rate(stochastic_depth_drop_rate,
                             flat_stochastic_depth_drop_rate, index,
                             num_blocks)
      # Anti-aliasing (a spec's) acts in the blocks' strided convs, not in
      # the stem (block 0) nor in attention, as in timm.
      block_kwargs = conv_kwargs
      if spec.antialias and index and block_spec.block != 'mqa':
        block_kwargs = {**conv_kwargs, 'antialias': spec.antialias}
      block = _make_block(block_spec, spec, drop_rate, block_kwargs,
                          name=f'block{index:02d}_{block_spec.block}')
      x = block(x)
      blocks.append(block)
      stride *= block_spec.strides
      level_outputs[stride.bit_length() - 1] = x
    endpoints = {str(level): level_outputs[level]
                 for level in range(_MIN_LEVEL, _MAX_LEVEL + 1)
                 if level in level_outputs}

    self._output_specs = {level: t.shape for level, t in endpoints.items()}
    outputs = dict(endpoints)
    if include_head:
      head_conv, head_embed = spec.head_filters
      x = conv_norm.ConvNormAct(head_conv, 1, activation=spec.activation,
                                name='head_conv', **conv_kwargs)(x)
      x = tf_keras.layers.GlobalAveragePooling2D(keepdims=True,
                                                 name='head_pool')(x)
      outputs[HEAD_ENDPOINT] = conv_norm.ConvNormAct(
          head_embed, 1, activation=spec.activation, name='head_embedding',
          **conv_kwargs)(x)
    super().__init__(inputs=inputs, outputs=outputs, **kwargs)
    self._model_spec = spec
    self._table = table
    self._custom_spec = model_spec is not None or bool(spec_file)
    self._blocks = blocks

  @property
  def model_spec(self) -> specs.ModelSpec:
    return self._model_spec

  @property
  def blocks(self) -> list[tf_keras.layers.Layer]:
    """The body's block layers, one per row of the spec table, in order."""
    return list(self._blocks)

  @property
  def output_specs(self) -> dict[str, tf.TensorShape]:
    """Shapes of the feature levels '2'..'5' (the head is not a level)."""
    return self._output_specs

  def get_config(self) -> dict[str, Any]:
    config = backbone_config_lib.serialize_input_specs(self._config_dict)
    if self._custom_spec:
      # Made here: a dict kept on the model would become Keras-tracked.
      config['model_spec'] = spec_file.to_dict(self._table)
    return config

  @classmethod
  def from_config(cls, config, custom_objects=None):
    return cls(**backbone_config_lib.deserialize_input_specs(config))


def _make_block(block_spec: specs.BlockSpec, model_spec: specs.ModelSpec,
                drop_rate: float, conv_kwargs: dict[str, Any],
                name: str) -> tf_keras.layers.Layer:
  """The Keras layer for one row of a block-spec table."""
  kind = block_spec.block
  if kind == 'conv':
    return conv_norm.ConvNormAct(
        block_spec.filters, block_spec.kernel_size, strides=block_spec.strides,
        activation=model_spec.activation, name=name, **conv_kwargs)
  if kind == 'fused_ib':
    return fused_ib.FusedInvertedBottleneck(
        block_spec.filters, block_spec.expand_ratio,
        kernel_size=block_spec.kernel_size, strides=block_spec.strides,
        activation=model_spec.activation,
        stochastic_depth_drop_rate=drop_rate, name=name, **conv_kwargs)
  if kind == 'uib':
    return uib.UniversalInvertedBottleneck(
        block_spec.filters, block_spec.expand_ratio,
        strides=block_spec.strides,
        start_dw_kernel_size=block_spec.start_dw_kernel_size,
        middle_dw_kernel_size=block_spec.middle_dw_kernel_size,
        activation=model_spec.activation,
        layer_scale_init_value=model_spec.layer_scale_init_value,
        stochastic_depth_drop_rate=drop_rate, name=name, **conv_kwargs)
  if kind == 'mqa':
    return mobile_mqa.MobileMQABlock(
        block_spec.num_heads, block_spec.key_dim,
        kv_strides=block_spec.kv_strides,
        layer_scale_init_value=model_spec.layer_scale_init_value,
        stochastic_depth_drop_rate=drop_rate, name=name, **conv_kwargs)
  raise ValueError(f'{name}: unknown block type {kind!r}.')


@factory.register_backbone_builder('mobilenet_v4')
def build_mobilenet_v4(
    input_specs: tf_keras.layers.InputSpec,
    backbone_config: hyperparams.Config,
    norm_activation_config: hyperparams.Config,
    l2_regularizer: tf_keras.regularizers.Regularizer | None = None,
) -> tf_keras.Model:
  """Builds the MobileNetV4 backbone from a `univision` backbone config."""
  cfg = backbone_config_lib.chosen(backbone_config, 'mobilenet_v4')
  return MobileNetV4(
      model_id='' if cfg.spec_file else cfg.model_id,
      spec_file=cfg.spec_file,
      input_specs=input_specs,
      padding=cfg.padding,
      stochastic_depth_drop_rate=cfg.stochastic_depth_drop_rate,
      flat_stochastic_depth_drop_rate=cfg.flat_stochastic_depth_drop_rate,
      include_head=cfg.include_head,
      output_stride=cfg.output_stride,
      kernel_regularizer=l2_regularizer,
      use_sync_bn=norm_activation_config.use_sync_bn,
      norm_momentum=norm_activation_config.norm_momentum,
      norm_epsilon=norm_activation_config.norm_epsilon)
