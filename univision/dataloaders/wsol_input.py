"""Input pipeline for weakly supervised localization (WSOL).

Model Garden's classification parser knows neither boxes nor masks nor label
hierarchies, so this parser works on `wsol_records.decode`'s output:

- training: the image label mapped to `label_level` of the hierarchy; the
  image resized to the model's input, randomly flipped, normalized with
  Model Garden's ImageNet mean/std, and - for Hide-and-Seek (Singh & Lee,
  ICCV 2017) - a random grid of patches hidden (set to the mean, i.e. 0
  after normalization) with `hide_probability` each;
- evaluation: the same resize and normalization, plus what localization
  metrics need at the model's input resolution: boxes as INCLUSIVE pixel
  coordinates (x0, y0, x1, y1), padded to `max_boxes` with -1, the mask
  (and the label-deciding part's mask, where records have one), and both
  the level label and the finest label.
"""
import dataclasses

import tensorflow as tf
from official.vision.ops import preprocess_ops

from univision.data import label_hierarchy


@dataclasses.dataclass(frozen=True)
class HideAndSeek:
  """Hide-and-Seek: hide each `grid_size`-pixel cell with a probability."""
  grid_size: int
  hide_probability: float


def hide_patches(image: tf.Tensor, grid_size: int, hide_probability: float,
                 seed: tf.Tensor | None = None) -> tf.Tensor:
  """Zeroes random `grid_size` x `grid_size` cells of a normalized image."""
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  cells = [-(-height // grid_size), -(-width // grid_size)]
  if seed is None:
    seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
  keep = tf.cast(tf.random.stateless_uniform(cells, seed) >= hide_probability,
                 image.dtype)
  keep = tf.repeat(tf.repeat(keep, grid_size, axis=0), grid_size, axis=1)
  return image * keep[:height, :width, None]


def cutmix(images: tf.Tensor, labels: tf.Tensor, num_classes: int,
           beta: float = 1.0, probability: float = 1.0,
           seed: tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor]:
  """CutMix (Yun et al., ICCV 2019) on a batch, as WSOL benchmarks train it.

  With `probability`, one box per batch - area share 1 - lam with lam ~
  Beta(beta, beta), centre uniform, clipped to the image - is pasted into
  every image from a partner image (a random permutation of the batch),
  and the labels mix by the pasted box's exact pixel share. Model Garden's
  `augment.MixupAndCutmix` is not used: it weighs the labels by the box's
  area before clipping (wrong at the borders) and sizes its width from the
  height.

  Args:
    images: [B, H, W, C] images.
    labels: [B] int class ids.
    num_classes: Classes of the soft labels.
    beta: Beta distribution parameter of lam.
    probability: Chance that a batch is mixed.
    seed: A [2] int stateless seed; None draws from the global generator.

  Returns:
    (images, soft labels [B, num_classes] float32): one-hot when unmixed.
  """
  if seed is None:
    seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
  seeds = tf.random.experimental.stateless_split(seed, 5)
  one_hot = tf.one_hot(tf.cast(labels, tf.int32), num_classes)
  height, width = tf.shape(images)[1], tf.shape(images)[2]
  gamma = [tf.random.stateless_gamma([], seeds[i], alpha=beta)
           for i in (0, 1)]
  lam = gamma[0] / (gamma[0] + gamma[1])
  ratio = tf.sqrt(1.0 - lam)
  cut_h = tf.cast(ratio * tf.cast(height, tf.float32), tf.int32)
  cut_w = tf.cast(ratio * tf.cast(width, tf.float32), tf.int32)
  centre = tf.random.stateless_uniform([2], seeds[2], maxval=1.0)
  cy = tf.cast(centre[0] * tf.cast(height, tf.float32), tf.int32)
  cx = tf.cast(centre[1] * tf.cast(width, tf.float32), tf.int32)
  y0, y1 = tf.clip_by_value(cy - cut_h // 2, 0, height), tf.clip_by_value(
      cy + cut_h // 2, 0, height)
  x0, x1 = tf.clip_by_value(cx - cut_w // 2, 0, width), tf.clip_by_value(
      cx + cut_w // 2, 0, width)
  rows = tf.range(height)[:, None]
  cols = tf.range(width)[None, :]
  box = (rows >= y0) & (rows < y1) & (cols >= x0) & (cols < x1)
  pasted = tf.cast(box, tf.float32)
  share = tf.reduce_mean(pasted)  # The exact pixel share of the partner.
  partner = tf.argsort(tf.random.stateless_uniform(
      [tf.shape(images)[0]], seeds[3]))
  mixed = tf.where(box[None, :, :, None], tf.gather(images, partner), images)
  soft = (1.0 - share) * one_hot + share * tf.gather(one_hot, partner)
  apply = tf.random.stateless_uniform([], seeds[4]) < probability
  return (tf.where(apply, mixed, images), tf.where(apply, soft, one_hot))


def inclusive_pixel_boxes(boxes: tf.Tensor, height: int, width: int,
                          max_boxes: int) -> tuple[tf.Tensor, tf.Tensor]:
  """Normalized (ymin, xmin, ymax, xmax) -> padded inclusive (x0, y0, x1, y1).

  Pixel i covers [i, i + 1) of the image, so a box ending at normalized
  coordinate m covers pixels up to ceil(m * size) - 1.
  """
  scale = tf.constant([height, width, height, width], tf.float32)
  pixels = boxes * scale
  y0, x0 = tf.floor(pixels[:, 0]), tf.floor(pixels[:, 1])
  y1 = tf.maximum(tf.math.ceil(pixels[:, 2]) - 1, y0)
  x1 = tf.maximum(tf.math.ceil(pixels[:, 3]) - 1, x0)
  result = tf.cast(tf.stack([x0, y0, x1, y1], axis=-1), tf.int32)
  count = tf.minimum(tf.shape(result)[0], max_boxes)
  padded = tf.pad(result[:count], [[0, max_boxes - count], [0, 0]],
                  constant_values=-1)
  return tf.ensure_shape(padded, [max_boxes, 4]), count


class Parser:
  """Decoded WSOL records -> (image, label) or (image, evaluation labels)."""

  def __init__(self, output_size: list[int],
               hierarchy: label_hierarchy.LabelHierarchy, label_level: str,
               aug_rand_hflip: bool = True,
               hide_and_seek: HideAndSeek | None = None,
               max_boxes: int = 8, dtype: str = 'float32'):
    """Initializes the parser.

    Args:
      output_size: [height, width] of the model input.
      hierarchy: The dataset's label hierarchy.
      label_level: The level whose labels the classifier learns.
      aug_rand_hflip: Random horizontal flips when training.
      hide_and_seek: Hide-and-Seek settings for training, or None.
      max_boxes: Evaluation boxes per image (extra ones are dropped).
      dtype: Image dtype.
    """
    self._size = list(output_size)
    self._table = hierarchy.table(label_level)  # Checks the level.
    self._hflip = aug_rand_hflip
    self._hide = hide_and_seek
    self._max_boxes = max_boxes
    self._dtype = tf.dtypes.as_dtype(dtype)

  def _image(self, image: tf.Tensor) -> tf.Tensor:
    image = tf.image.resize(tf.cast(image, tf.float32), self._size,
                            method='bilinear')
    return preprocess_ops.normalize_image(image)

  def _level(self, fine: tf.Tensor) -> tf.Tensor:
    return tf.gather(tf.constant(self._table, tf.int32),
                     tf.cast(fine, tf.int32))

  def parse_train(self, decoded: dict[str, tf.Tensor]):
    image = self._image(decoded['image'])
    if self._hflip:
      image = tf.image.random_flip_left_right(image)
    if self._hide is not None:
      image = hide_patches(image, self._hide.grid_size,
                           self._hide.hide_probability)
    return tf.cast(image, self._dtype), self._level(decoded['label'])

  def parse_eval(self, decoded: dict[str, tf.Tensor]):
    image = self._image(decoded['image'])
    boxes, count = inclusive_pixel_boxes(decoded['boxes'], *self._size,
                                         self._max_boxes)
    resized = lambda m: tf.cast(tf.image.resize(
        m, self._size, method='nearest')[..., 0], tf.bool)
    labels = {'label': self._level(decoded['label']),
              'fine_label': tf.cast(decoded['label'], tf.int32),
              'boxes': boxes, 'num_boxes': count,
              'mask': resized(decoded['mask']),
              'has_mask': decoded['has_mask'],
              'part_mask': resized(decoded['part_mask']),
              'has_part': decoded['has_part']}
    return tf.cast(image, self._dtype), labels

  def parse_fn(self, is_training: bool):
    """Model Garden's parser hook: serialized record -> model inputs."""
    return self.parse_train if is_training else self.parse_eval
