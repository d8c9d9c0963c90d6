"""Model Garden's own MobileNetV4 weights into univision's backbone.

For users with checkpoints trained by `official.vision`'s `mobilenet`
backbone (`MobileNetV4*` model ids) who want univision's fixes (non-square
Mobile MQA, QAT of the hybrids). Both backbones build their blocks in the same
order and, inside a block, create variables in the same order, so weights
pair up block by block. One layout differs: Model Garden's Mobile MQA without
K/V downsampling (`MultiQueryAttentionLayerV2`) keeps einsum weights
query[h, k, C], key[C, k], value[C, v], output[C, h, v], which become 1x1
conv kernels here (query channel h*k_dim + k, output input channel h*v_dim+v).

Padding and BN epsilon must match: build the univision backbone with
`padding='same'` and Model Garden's `norm_epsilon`.
"""
import numpy as np
import tensorflow as tf, tf_keras

from univision.modeling.backbones import mobilenet_v4


def _einsum_to_conv(name: str, value: np.ndarray) -> np.ndarray:
  """Model Garden's einsum MQA weight as a univision 1x1 conv kernel."""
  leaf = name.split('/')[-1].split(':')[0]
  if leaf == 'query':  # [heads, key_dim, C] -> [1, 1, C, heads * key_dim]
    heads, dim, channels = value.shape
    return value.transpose(2, 0, 1).reshape(1, 1, channels, heads * dim)
  if leaf in ('key', 'value'):  # [C, dim] -> [1, 1, C, dim]
    return value[np.newaxis, np.newaxis]
  if leaf == 'output':  # [C, heads, value_dim] -> [1, 1, heads * dim, C]
    channels, heads, dim = value.shape
    return value.transpose(1, 2, 0).reshape(1, 1, heads * dim, channels)
  return value


def _layers_with_weights(model: tf_keras.Model) -> list[tf_keras.layers.Layer]:
  return [layer for layer in model.layers if layer.weights]


def copy_model_garden_weights(source: tf_keras.Model,
                              target: mobilenet_v4.MobileNetV4) -> None:
  """Copies an `official.vision` MobileNet (MNv4) backbone's weights.

  Args:
    source: Model Garden's `MobileNet` backbone with a `MobileNetV4*` id.
    target: A univision `MobileNetV4` backbone of the same model id.

  Raises:
    ValueError: naming the first block or variable that does not fit.
  """
  source_layers = _layers_with_weights(source)
  target_layers = _layers_with_weights(target)
  if len(source_layers) != len(target_layers):
    raise ValueError(f'Model Garden backbone has {len(source_layers)} blocks '
                     f'with weights, univision {len(target_layers)}: not the '
                     'same architecture.')
  pairs = []
  for src_layer, dst_layer in zip(source_layers, target_layers):
    if len(src_layer.weights) != len(dst_layer.weights):
      raise ValueError(f'{src_layer.name} has {len(src_layer.weights)} '
                       f'variables, {dst_layer.name} '
                       f'{len(dst_layer.weights)}.')
    for src, dst in zip(src_layer.weights, dst_layer.weights):
      value = _einsum_to_conv(src.name, src.numpy())
      if value.shape != tuple(dst.shape):
        raise ValueError(f'{src.name} {value.shape} does not fit {dst.name} '
                         f'{tuple(dst.shape)}.')
      pairs.append((dst, value))
  for dst, value in pairs:
    dst.assign(value)
