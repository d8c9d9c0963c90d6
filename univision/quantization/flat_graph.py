"""Rebuilds a univision MobileNetV4 model as one flat graph of plain layers.

Why: tensorflow-model-optimization quantizes a model layer by layer and only
understands standard Keras layers. Inside a composite layer (our UIB, FusedIB,
Mobile MQA block) it can neither fold batch norm into the convs nor quantize
the intermediate activations or the residual Add - which is exactly why Model
Garden's QAT'd MNv4 keeps float ADDs and DEQUANTIZEs. So QAT runs on a "flat
twin": the same network written with Conv2D / DepthwiseConv2D (batch norm
folded in) / Add / Reshape / Softmax and `qat_layers`' matmul layers in one
functional graph, its weights copied from the float model.

Exact rewrites made on the way (the flat graph computes the same function):

* Every batch norm is folded, in inference mode, into the conv before it
  (kernel scaled per output channel, shift as the conv's bias): the weights
  QAT rounds are then the weights TFLite runs. (tfmot's default scheme
  instead rounds the kernel BEFORE batch norm and the converter re-folds and
  re-rounds it, so training and deployment see different weights.) QAT
  therefore trains with batch statistics frozen (as Krishnamoorthi,
  "Quantizing deep convolutional networks for efficient inference", 2018,
  recommends late in QAT).
* LayerScale after a UIB's projection conv + BN is folded into that conv;
  after Mobile MQA's output 1x1 conv (no bias), into its kernel.
* A batch norm that follows no conv (Mobile MQA's pre-norm, an optional
  classifier-head norm) becomes its inference-time affine map, a 1x1
  depthwise conv with bias (see `_norm_as_affine`).
* Mobile MQA's `key_dim ** -0.5` logit scale is folded into the query kernel.
* The attention einsums become two matrix products on [batch, positions *
  heads, dim] tensors (query heads are rows; the one key/value head is
  shared): `qat_layers.BatchMatMul` with `op_set='tflite'` (in the batch-1
  TFLite model, FULLY_CONNECTED ops whose weights are the keys / the
  transposed values), or, with `op_set='edgetpu'`, a broadcast MUL + SUM
  each, because Coral's Edge TPU maps neither BATCH_MATMUL nor a
  FULLY_CONNECTED with run-time weights.

One rewrite is NOT exact: with `op_set='edgetpu'`, GELU (MNv4-Hybrid-L)
becomes x * sigmoid(1.702 x) (LOGISTIC + MUL; Coral has no GELU), which
differs from GELU by up to ~0.02; QAT fine-tuning adapts the weights to it.

Training-only parts are left out: stochastic depth (QAT fine-tunes briefly)
and attention dropout. The flat graph needs a fixed input size (Mobile MQA's
output reshape is static), as integer TFLite models have anyway.
"""
from typing import Any

import numpy as np
import tensorflow as tf, tf_keras

from univision.modeling.backbones import mobilenet_v4
from univision.modeling.layers import conv_norm
from univision.modeling.layers import fused_ib
from univision.modeling.layers import mobile_mqa
from univision.modeling.layers import uib
from univision.quantization import qat_layers

OP_SETS = ('edgetpu', 'tflite')
_GELU_SIGMOID_SCALE = 1.702


def check_op_set(op_set: str, key: str = 'op_set') -> str:
  """`op_set` if it is one of `OP_SETS`, else a `ValueError` naming `key`."""
  if op_set not in OP_SETS:
    raise ValueError(f'{key}={op_set!r} is not one of {OP_SETS}.')
  return op_set


def _copy(src: tf_keras.layers.Layer, x, name: str):
  """Applies a fresh copy of standard layer `src` (same config and weights)."""
  layer = type(src).from_config({**src.get_config(), 'name': name})
  y = layer(x)
  layer.set_weights(src.get_weights())
  return y, layer


def _norm_scale_shift(norm: tf_keras.layers.BatchNormalization
                      ) -> tuple[np.ndarray, np.ndarray]:
  """(scale, shift) with inference-mode `norm(x) == x * scale + shift`."""
  scale = 1.0 / np.sqrt(norm.moving_variance.numpy() + norm.epsilon)
  if norm.scale:
    scale = scale * norm.gamma.numpy()
  shift = -norm.moving_mean.numpy() * scale
  if norm.center:
    shift = shift + norm.beta.numpy()
  return scale, shift


def _norm_as_affine(norm: tf_keras.layers.BatchNormalization, x, name: str):
  """A batch norm that follows no conv, as a 1x1 depthwise conv with bias.

  TFLite would emit such a norm as MUL + ADD with a float intermediate; as a
  depthwise conv it is one int8 op.
  """
  scale, shift = _norm_scale_shift(norm)
  affine = tf_keras.layers.DepthwiseConv2D(1, use_bias=True, name=name)
  y = affine(x)
  affine.set_weights([scale.reshape(1, 1, -1, 1), shift])
  return y


def _layer_scale(block) -> np.ndarray | None:
  return None if block.layer_scale is None else block.layer_scale.gamma.numpy()


def _scaled_pointwise(src: tf_keras.layers.Conv2D, x, name: str, scale):
  """A copy of a bias-free 1x1 conv whose output channels are scaled."""
  y, conv = _copy(src, x, name)
  (kernel,) = conv.get_weights()
  conv.set_weights([kernel * scale])
  return y


class _Flattener:
  """Writes univision blocks as plain layers for one `op_set`."""

  def __init__(self, op_set: str):
    self._op_set = check_op_set(op_set)

  def activation(self, name: str | None, x, layer_name: str):
    if name is None:
      return x
    if name == 'gelu' and self._op_set == 'edgetpu':
      # x * sigmoid(1.702 x) (Hendrycks & Gimpel's sigmoid approximation).
      gate = tf_keras.layers.Rescaling(_GELU_SIGMOID_SCALE,
                                       name=f'{layer_name}_scale')(x)
      gate = tf_keras.layers.Activation('sigmoid',
                                        name=f'{layer_name}_gate')(gate)
      return tf_keras.layers.Multiply(name=layer_name)([x, gate])
    return tf_keras.layers.Activation(name, name=layer_name)(x)

  def conv_norm_act(self, src: conv_norm.ConvNormAct, x, name: str,
                    output_scale: np.ndarray | None = None):
    """ConvNormAct as [ZeroPadding2D] -> conv with BN folded [-> activation]
    [-> the anti-aliasing pool or blur of a strided conv].

    ReLU stays inside the conv (`activation='relu'`), so tfmot quantizes
    after it and TFLite fuses it; other activations follow as layers.
    `output_scale` (a per-channel LayerScale) is folded in as well.
    """
    # pylint: disable=protected-access
    if src._pad is not None:
      x, _ = _copy(src._pad, x, f'{name}_pad')
    (kernel,) = src.conv.get_weights()
    if src.norm is not None:
      scale, shift = _norm_scale_shift(src.norm)
    else:
      scale = np.ones(kernel.shape[2] if src._depthwise else kernel.shape[3],
                      np.float32)
      shift = np.zeros_like(scale)
    if output_scale is not None:
      scale, shift = scale * output_scale, shift * output_scale
    fused_relu = src._activation == 'relu'
    conv = type(src.conv).from_config({
        **src.conv.get_config(), 'name': f'{name}_conv', 'use_bias': True,
        'activation': 'relu' if fused_relu else None})
    x = conv(x)
    if src._depthwise:
      kernel = kernel * scale.reshape(1, 1, -1, 1)
    else:
      kernel = kernel * scale
    conv.set_weights([kernel, shift])
    if not fused_relu:
      x = self.activation(src._activation, x, f'{name}_act')
    if src.aa is not None:
      x, _ = _copy(src.aa, x, f'{name}_aa')
    return x

  def uib_block(self, src: uib.UniversalInvertedBottleneck, x, name: str):
    shortcut = x
    if src.start_dw is not None:
      x = self.conv_norm_act(src.start_dw, x, f'{name}_start_dw')
    x = self.conv_norm_act(src.expand, x, f'{name}_expand')
    if src.middle_dw is not None:
      x = self.conv_norm_act(src.middle_dw, x, f'{name}_middle_dw')
    x = self.conv_norm_act(src.project, x, f'{name}_project',
                           output_scale=_layer_scale(src))
    if src._has_residual:  # pylint: disable=protected-access
      x = tf_keras.layers.Add(name=f'{name}_add')([x, shortcut])
    return x

  def fused_ib_block(self, src: fused_ib.FusedInvertedBottleneck, x, name: str):
    shortcut = x
    x = self.conv_norm_act(src.expand, x, f'{name}_expand')
    x = self.conv_norm_act(src.project, x, f'{name}_project')
    if src._has_residual:  # pylint: disable=protected-access
      x = tf_keras.layers.Add(name=f'{name}_add')([x, shortcut])
    return x

  def matmul(self, a, b, name: str, transpose_b: bool = False):
    """`a @ b` or `a @ b^T` for [batch, rows, dim] tensors."""
    if self._op_set == 'tflite':
      return qat_layers.BatchMatMul(transpose_b=transpose_b, name=name)([a, b])
    # Broadcast MUL over [batch, rows, cols, dim], then SUM over dim.
    if not transpose_b:
      b = tf_keras.layers.Permute((2, 1), name=f'{name}_transpose')(b)
    rows = tf_keras.layers.Reshape((a.shape[1], 1, a.shape[2]),
                                   name=f'{name}_rows')(a)
    cols = tf_keras.layers.Reshape((1, b.shape[1], b.shape[2]),
                                   name=f'{name}_cols')(b)
    products = tf_keras.layers.Multiply(name=f'{name}_products')([rows, cols])
    return qat_layers.ReduceSum(axis=-1, name=name)(products)

  def mqa_block(self, src: mobile_mqa.MobileMQABlock, x, name: str):
    height, width = x.shape[1], x.shape[2]
    if height is None or width is None:
      raise ValueError(f'{name}: the flat graph needs a fixed input size; '
                       f'got a feature map of shape {x.shape}.')
    att = src.attention
    cfg = att.get_config()
    heads, key_dim, value_dim = (cfg['num_heads'], cfg['key_dim'],
                                 cfg['value_dim'])
    shortcut = x
    x = _norm_as_affine(src.norm, x, f'{name}_norm')
    query = _scaled_pointwise(att.query_proj, x, f'{name}_query',
                              np.float32(key_dim) ** -0.5)
    query = tf_keras.layers.Reshape((-1, key_dim),
                                    name=f'{name}_query_rows')(query)
    key_in, value_in = x, x
    if att.key_down is not None:
      key_in = self.conv_norm_act(att.key_down, x, f'{name}_key_down')
      value_in = self.conv_norm_act(att.value_down, x, f'{name}_value_down')
    key, _ = _copy(att.key_proj, key_in, f'{name}_key')
    key = tf_keras.layers.Reshape((-1, key_dim), name=f'{name}_key_rows')(key)
    value, _ = _copy(att.value_proj, value_in, f'{name}_value')
    value = tf_keras.layers.Reshape((-1, value_dim),
                                    name=f'{name}_value_rows')(value)
    logits = self.matmul(query, key, f'{name}_logits', transpose_b=True)
    probs = tf_keras.layers.Softmax(name=f'{name}_softmax')(logits)
    out = self.matmul(probs, value, f'{name}_attend')
    out = tf_keras.layers.Reshape((height, width, heads * value_dim),
                                  name=f'{name}_heads')(out)
    scale = _layer_scale(src)
    out = _scaled_pointwise(att.output_proj, out, f'{name}_output',
                            1.0 if scale is None else scale)
    if src._use_residual:  # pylint: disable=protected-access
      out = tf_keras.layers.Add(name=f'{name}_add')([out, shortcut])
    return out

  def block(self, src: tf_keras.layers.Layer, x):
    if isinstance(src, conv_norm.ConvNormAct):
      return self.conv_norm_act(src, x, src.name)
    if isinstance(src, uib.UniversalInvertedBottleneck):
      return self.uib_block(src, x, src.name)
    if isinstance(src, fused_ib.FusedInvertedBottleneck):
      return self.fused_ib_block(src, x, src.name)
    if isinstance(src, mobile_mqa.MobileMQABlock):
      return self.mqa_block(src, x, src.name)
    raise TypeError(f'{src.name}: no flat form for {type(src).__name__}.')


def flat_backbone(backbone: mobilenet_v4.MobileNetV4, x,
                  op_set: str = 'edgetpu') -> dict[str, Any]:
  """Applies `backbone` to tensor `x` as flat layers; returns its endpoints.

  Args:
    backbone: The float backbone (its weights are copied).
    x: A [batch, height, width, 3] Keras tensor of fixed size.
    op_set: `'edgetpu'`: only ops on the Coral Edge TPU's op table (attention
      as broadcast MUL + SUM; GELU as x * sigmoid(1.702 x), an approximation
      QAT fine-tuning adapts to); `'tflite'`: exact rewrites using TFLite's
      int8 FULLY_CONNECTED (attention) and GELU (CPU, GPU and NNAPI
      delegates).
  """
  flattener = _Flattener(op_set)
  levels = {}
  stride = 1
  for block, spec in zip(backbone.blocks, backbone.model_spec.blocks):
    x = flattener.block(block, x)
    stride *= spec.strides
    levels[str(stride.bit_length() - 1)] = x
  endpoints = {level: levels[level] for level in backbone.output_specs}
  if not backbone.get_config()['include_head']:
    return endpoints
  x = flattener.conv_norm_act(backbone.get_layer('head_conv'), x, 'head_conv')
  x, _ = _copy(backbone.get_layer('head_pool'), x, 'head_pool')
  x = flattener.conv_norm_act(backbone.get_layer('head_embedding'), x,
                              'head_embedding')
  endpoints[mobilenet_v4.HEAD_ENDPOINT] = x
  return endpoints


def flat_classifier(model: tf_keras.Model, input_size: tuple[int, int],
                    op_set: str = 'edgetpu') -> tf_keras.Model:
  """The flat twin of a Model Garden `ClassificationModel` on our backbone.

  Args:
    model: A classification model whose `backbone` is `MobileNetV4`; the
      layers after the backbone (head batch norm, pooling, dropout, dense)
      are copied as they are.
    input_size: (height, width) of the flat graph's fixed input.
    op_set: `'edgetpu'` or `'tflite'` (see `flat_backbone`).

  Returns:
    A functional `tf_keras.Model` from [batch, height, width, 3] images to
    the same logits.
  """
  backbone = model.backbone
  if not isinstance(backbone, mobilenet_v4.MobileNetV4):
    raise TypeError('flat_classifier needs a MobileNetV4 backbone, got '
                    f'{type(backbone).__name__}.')
  inputs = tf_keras.Input(shape=(*input_size, 3), name='image')
  endpoints = flat_backbone(backbone, inputs, op_set)
  x = endpoints[max(endpoints)]
  head = model.layers[model.layers.index(backbone) + 1:]
  for layer in head:
    if isinstance(layer, tf_keras.layers.BatchNormalization):
      x = _norm_as_affine(layer, x, layer.name)
    else:
      x, _ = _copy(layer, x, layer.name)
  return tf_keras.Model(inputs, x, name=f'{model.name}_flat')
