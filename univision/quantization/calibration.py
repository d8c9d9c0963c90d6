"""Sets a QAT model's quantization ranges from data instead of [-6, 6].

tfmot's activation quantizers start at [-6, 6] and move towards the observed
range by an exponential moving average (decay 0.999), so a freshly wrapped
model clips or wastes most of its 256 levels for the first thousands of
steps, and an untrained QAT model converts to a poor int8 model. Here every
range is set at once, as post-training calibration sets it (and
`univision.quantization.ptq` is exactly that: these ranges, no training):

* weight ranges: by one training-mode pass of the QAT model (tfmot's
  last-value quantizers then take each kernel's own min/max per channel);
  every other variable that pass touches (batch-norm statistics, moving
  ranges) is put back;
* activation ranges: from the same layer's outputs in the float flat graph
  (`flat_graph`), widened to include 0 as tfmot's quantizers do, by one of
  `ESTIMATORS`:
  - `batch_mean`: the per-batch min and max AVERAGED over the batches (what
    tfmot's moving average converges to; QAT's start);
  - `image_percentile`: per image, the tensor's min and max; the range is
    the `percentile`-th percentile of the images' maxima and the
    (100 - `percentile`)-th of their minima: it holds every value of all
    but the most extreme (100 - `percentile`)% of the images, so a few
    outlier images (an over-exposed photo, a blank frame) cannot set it
    however extreme they are, whatever the tensor's size;
  - `percentile`: the `percentile`-th and (100 - `percentile`)-th
    percentiles of all the tensor's values over every image, read off a
    histogram of 4096 bins between the tensor's extremes (TensorRT's
    percentile calibrator): robust to rare values in a large tensor, but
    not to an outlier image in a small one (the logits: 10 values an
    image, where one image's share is above 100 - `percentile`);
  - `minmax`: the absolute extremes over every image (what the TFLite
    converter's own calibration takes; one outlier image sets the range:
    on the Fashion-MNIST demo 20 batches' extremes stretched the logits'
    range to [-3, 228] and the int8 model fell to chance).
"""
import re
from typing import Iterable

import numpy as np
import tensorflow as tf, tf_keras

ESTIMATORS = ('batch_mean', 'image_percentile', 'percentile', 'minmax')
_BINS = 4096
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
              batches: Iterable[np.ndarray], estimator: str = 'batch_mean',
              percentile: float = 99.0) -> int:
  """Sets all quantization ranges of `qat_model` from `batches` of images.

  Args:
    qat_model: The `qat.quantize_flat_model` wrapping of `flat_model`.
    flat_model: The float flat graph (same layer names, without `quant_`).
    batches: Batches of model-ready (normalized) images.
    estimator: How activation ranges are read off the outputs (one of
      `ESTIMATORS`, see the module).
    percentile: The upper percentile of the `image_percentile` and
      `percentile` estimators, in (50, 100]; the lower one is
      100 - `percentile`.

  Returns:
    The number of images used.

  Raises:
    ValueError: if `batches` is empty, or for an unknown `estimator` or a
      `percentile` outside (50, 100].
  """
  if estimator not in ESTIMATORS:
    raise ValueError(f'calibrate: estimator={estimator!r}; choose from '
                     f'{ESTIMATORS}.')
  if not 50.0 < percentile <= 100.0:
    raise ValueError(f'calibrate: percentile={percentile} is not in '
                     '(50, 100].')
  batches = [tf.convert_to_tensor(b, tf.float32) for b in batches]
  if not batches:
    raise ValueError('calibrate: no images were given.')
  ranges = _activation_range_vars(qat_model)
  names = [n for n in ranges if n is not None]
  probe = tf_keras.Model(flat_model.inputs,
                         [flat_model.get_layer(n).output for n in names])
  _set_weight_ranges(qat_model, batches[0])

  def outputs(images):
    return [images.numpy(), *(o.numpy() for o in probe(images, training=False))]

  lows, highs = [], []  # [image][tensor]: each image's extremes.
  for images in batches:
    values = [v.reshape(len(v), -1) for v in outputs(images)]
    lows.extend(np.stack([v.min(axis=1) for v in values], axis=1))
    highs.extend(np.stack([v.max(axis=1) for v in values], axis=1))
  lows, highs = np.array(lows), np.array(highs)
  if estimator == 'batch_mean':
    edges = np.cumsum([0] + [int(b.shape[0]) for b in batches])
    spans = list(zip(edges, edges[1:]))
    bounds = zip(np.mean([lows[a:b].min(axis=0) for a, b in spans], axis=0),
                 np.mean([highs[a:b].max(axis=0) for a, b in spans], axis=0))
  elif estimator == 'minmax':
    bounds = zip(lows.min(axis=0), highs.max(axis=0))
  elif estimator == 'image_percentile':
    bounds = zip(np.percentile(lows, 100.0 - percentile, axis=0),
                 np.percentile(highs, percentile, axis=0))
  else:
    bounds = _percentiles(batches, outputs, lows.min(axis=0),
                          highs.max(axis=0), percentile)
  for name, (low, high) in zip([None] + names, bounds):
    min_var, max_var = ranges[name]
    min_var.assign(tf.fill(min_var.shape, min(float(low), 0.0)))
    max_var.assign(tf.fill(max_var.shape, max(float(high), 0.0)))
  return sum(int(images.shape[0]) for images in batches)


def _percentiles(batches, outputs, lows: np.ndarray, highs: np.ndarray,
                 percentile: float) -> list[tuple[float, float]]:
  """Per tensor, the (100 - p)-th and p-th percentiles of all its values.

  A second pass over `batches` fills a histogram of `_BINS` bins between
  each tensor's extremes; the percentiles are interpolated in it.
  """
  counts = np.zeros([len(lows), _BINS], np.int64)
  for images in batches:
    for i, values in enumerate(outputs(images)):
      if highs[i] > lows[i]:
        counts[i] += np.histogram(values, _BINS, (lows[i], highs[i]))[0]
  bounds = []
  for count, low, high in zip(counts, lows, highs):
    if not high > low:
      bounds.append((low, high))
      continue
    cumulative = np.concatenate([[0.0], np.cumsum(count) / count.sum()])
    edges = np.linspace(low, high, _BINS + 1)
    bounds.append((np.interp(1.0 - percentile / 100.0, cumulative, edges),
                   np.interp(percentile / 100.0, cumulative, edges)))
  return bounds
