"""An experiment's own image mean and std, on top of Model Garden's.

Model Garden's classification parser and serving module normalize every
image with ImageNet's mean and std (`preprocess_ops.MEAN_RGB`,
`STDDEV_RGB`, on 0-255 pixels), with no setting to change them. Weights
trained with another normalization (timm's Inception-normalized
MobileNetV4 tags: mean and std 127.5) need theirs: `renormalize` turns an
image Model Garden normalized into one normalized with `mean` and `std`,
exactly (an affine map), and returns it untouched for Model Garden's own.
"""
from collections.abc import Sequence

import tensorflow as tf
from official.vision.ops import preprocess_ops

MODEL_GARDEN_MEAN = tuple(preprocess_ops.MEAN_RGB)
MODEL_GARDEN_STD = tuple(preprocess_ops.STDDEV_RGB)


def renormalize(image: tf.Tensor, mean: Sequence[float],
                std: Sequence[float]) -> tf.Tensor:
  """`image` (normalized by Model Garden) normalized with `mean`, `std`.

  Args:
    image: [..., 3] pixels as (p - MEAN_RGB) / STDDEV_RGB.
    mean: Per-channel mean on 0-255 pixels.
    std: Per-channel std on 0-255 pixels.

  Returns:
    (p - mean) / std, in `image`'s dtype.

  Raises:
    ValueError: unless `mean` and `std` have 3 values, `std` all > 0.
  """
  mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
  if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
    raise ValueError(f'Image normalization: mean {list(mean)} and std '
                     f'{list(std)} need 3 values each, std > 0.')
  if mean == MODEL_GARDEN_MEAN and std == MODEL_GARDEN_STD:
    return image
  pixels = (tf.cast(image, tf.float32) * MODEL_GARDEN_STD + MODEL_GARDEN_MEAN)
  return tf.cast((pixels - mean) / std, image.dtype)
