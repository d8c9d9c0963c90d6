"""Anti-aliased downsampling (Zhang, ICML 2019), as timm's MobileNetV4 uses it.

timm's `mobilenetv4_conv_aa_*` and `mobilenetv4_conv_blur_medium` run every
strided conv of their blocks at stride 1 and downsample after its batch norm
and activation with a low-pass filter: a 2x2 average pool (`'avg'`) or a
3x3 binomial blur with zero padding (`'blur'`, timm's 'blurpc'). Neither has
weights. `ConvNormAct(antialias=...)` inserts the layer.
"""
from typing import Any

import numpy as np
import tensorflow as tf, tf_keras

KINDS = ('', 'avg', 'blur')


def check_antialias(kind: str) -> str:
  """`kind` if known ('' for none), else a `ValueError` naming the choices."""
  if kind not in KINDS:
    raise ValueError(f'antialias={kind!r} is not one of {KINDS}.')
  return kind


@tf_keras.utils.register_keras_serializable(package='univision')
class BlurPool2D(tf_keras.layers.Layer):
  """Binomial blur, then subsampling: a fixed depthwise filter with a stride.

  The filter is the outer product of the binomial row (1, 2, 1) / 4 (size
  3) or (1, 4, 6, 4, 1) / 16 (size 5); the input is zero-padded by
  ((strides - 1) + (size - 1)) // 2 on every side.
  """

  def __init__(self, filter_size: int = 3, strides: int = 2, **kwargs):
    super().__init__(**kwargs)
    if filter_size not in (3, 5) or strides < 1:
      raise ValueError(f'{self.name}: filter_size {filter_size} (3 or 5), '
                       f'strides {strides} (>= 1).')
    self._filter_size = filter_size
    self._strides = strides
    row = np.array([1.0, 2.0, 1.0] if filter_size == 3 else
                   [1.0, 4.0, 6.0, 4.0, 1.0])
    self._filter = np.outer(row, row) / row.sum() ** 2
    self._padding = ((strides - 1) + (filter_size - 1)) // 2

  def call(self, inputs: tf.Tensor) -> tf.Tensor:
    channels = inputs.shape[-1]
    kernel = tf.constant(np.tile(self._filter[:, :, None, None],
                                 [1, 1, channels, 1]), inputs.dtype)
    p = self._padding
    padded = tf.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]])
    return tf.nn.depthwise_conv2d(padded, kernel,
                                  [1, self._strides, self._strides, 1],
                                  'VALID')

  def get_config(self) -> dict[str, Any]:
    return {**super().get_config(), 'filter_size': self._filter_size,
            'strides': self._strides}


def downsample(kind: str, strides: int) -> tf_keras.layers.Layer:
  """The anti-aliasing layer of `kind` ('avg' or 'blur') for `strides`."""
  if check_antialias(kind) == 'avg':
    return tf_keras.layers.AveragePooling2D(strides, strides, 'valid')
  if kind == 'blur':
    return BlurPool2D(3, strides)
  raise ValueError('downsample needs an anti-aliasing kind, got none.')
