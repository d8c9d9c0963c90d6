"""Starts a QAT model's quantization ranges from data instead of [-6, 6].

tfmot's activation quantizers start at [-6, 6] and move towards the observed
range by an exponential moving average (decay 0.999), so a freshly wrapped
model clips or wastes most of its 256 levels for the first thousands of
steps, and an untrained QAT model converts to a poor int8 model. Here every
range is set at once, as post-training calibration would set it:

* weight ranges: by one training-mode pass of the QAT model (tfmot's
  last-value quantizers then take each kernel's own min/max); every other
  variable that pass touches (batch-norm statistics, moving ranges) is put
  back;
* activation ranges: the per-batch min and max of the same layer's output
  in the float flat graph (`flat_graph`), AVERAGED over the batches (what
  tfmot's moving average converges to), widened to include 0 as tfmot's
  quantizers do. Absolute extremes would let one outlier image set a range
  (measured on the Fashion-MNIST demo: 20 batches' extremes stretched the
  logits' range to [-3, 228] and the int8 model fell to chance).
"""
import re
from typing import Iterable

import numpy as np
import tensorflow as tf, tf_keras

_RANGE_SUFFIXES = ('output', 'post_activation')


def _activation_range_vars(qat_model: tf_keras.Model):
  """{flat layer name: (min var, max var)} of every activation quantizer.

  The input's quantizer (tfmot's QuantizeLayer) is under the key None.
  """
  ranges = {}
  for layer in qat_model.layers:
    by_name = {v.name.split('/')[-1].split(':')[0]: v for v in layer.weights}
    inner = getattr(layer, 'layer', None)  # Set on QuantizeWrappers.
    if inner is None:
      bounds = sorted(n for n in by_name if n.endswith(('_min', '_max')))
      if bounds:  # The QuantizeLayer: [..._max, ..._min].
        ranges[None] = (by_name[bounds[1]], by_name[bounds[0]])
      continue
    for suffix in _RANGE_SUFFIXES:
      if f'{suffix}_min' in by_name:
        ranges[inner.name] = (by_name[f'{suffix}_min'],
                              by_name[f'{suffix}_max'])
  return ranges


def _set_weight_ranges(qat_model: tf_keras.Model, images: tf.Tensor) -> None:
  keep = [v for v in qat_model.weights
          if not re.search(r'kernel_(min|max):', v.name)]
  saved = [v.numpy() for v in keep]
  qat_model(images, training=True)
  for variable, value in zip(keep, saved):
    variable.assign(value)


def calibrate(qat_model: tf_keras.Model, flat_model: tf_keras.Model,
              batches: Iterable[np.ndarray]) -> int:
  """Sets all quantization ranges of `qat_model` from `batches` of images.

  Args:
    qat_model: The `qat.quantize_flat_model` wrapping of `flat_model`.
    flat_model: The float flat graph (same layer names, without `quant_`).
    batches: Batches of model-ready (normalized) images.

  Returns:
    The number of images used.

  Raises:
    ValueError: if `batches` is empty.
  """
  ranges = _activation_range_vars(qat_model)
  names = [n for n in ranges if n is not None]
  probe = tf_keras.Model(flat_model.inputs,
                         [flat_model.get_layer(n).output for n in names])
  lows = {n: [] for n in ranges}
  highs = {n: [] for n in ranges}
  count = 0
  for images in batches:
    images = tf.convert_to_tensor(images, tf.float32)
    if not count:
      _set_weight_ranges(qat_model, images)
    outputs = probe(images, training=False)
    for name, value in zip([None] + names, [images] + list(outputs)):
      lows[name].append(float(tf.reduce_min(value)))
      highs[name].append(float(tf.reduce_max(value)))
    count += int(images.shape[0])
  if not count:
    raise ValueError('calibrate: no images were given.')
  for name, (min_var, max_var) in ranges.items():
    low, high = float(np.mean(lows[name])), float(np.mean(highs[name]))
    min_var.assign(tf.fill(min_var.shape, min(low, 0.0)))
    max_var.assign(tf.fill(max_var.shape, max(high, 0.0)))
  return count
