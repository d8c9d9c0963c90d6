"""R-MAE inputs: images and k region maps, cropped and flipped together.

Model Garden's classification `Parser` augments the image alone; R-MAE
needs the same crop and flip on the image's FH label map, so the decoder
and parser here are ours. Region maps come either from the records
(`image/region/encoded`, written offline by `univision.data.fh_regions`;
the default) or from FH run on the decoded image by `tf.numpy_function`
(same `fh_regions.segment`; see that module for why offline is the default).

Per image, as the reference (facebookresearch/r-mae `pretrain/dataset/
pretrain.py`, `PretrainWithMask._process_mask`, `region_sample_type:
random`): the label map is cropped, resized with nearest neighbours and
flipped with the image; every segment id still present becomes a binary
map; k of them are drawn: if n >= k, k distinct ones at random; if n < k,
the n ids are each repeated ceil(k / n) times, shuffled, and the first k
taken (so some regions appear twice). A label map always has n >= 1 ids,
so the reference's all-zero case (n = 0, reachable only through its
optional small-region filter, which is off in every released config) does
not arise. Validation (ours): the present ids in increasing order, cycled
to k, so that validation losses are comparable between checkpoints.

Augmentation, as the reference's `random_resize_crop_w_loop` and Model
Garden's classification parser: an area-and-aspect random crop
(`sample_distorted_bounding_box`, aspect 3/4 .. 4/3; the whole image if no
crop is found in 10 attempts), resize (the image with `tf_resize_method`,
the labels with nearest neighbours), horizontal flip; validation resizes
the whole image (the reference's test processor). Images are normalised
with ImageNet mean and std, as Model Garden's parser does.
"""
from typing import Any, Optional, Sequence

import tensorflow as tf
from official.vision.ops import preprocess_ops

from univision.core import input_checks
from univision.data import fh_regions
from univision.dataloaders import classification_input as uv_input

_SOURCE_ID_KEY = 'image/source_id'
_FILENAME_KEY = 'image/filename'
RECORD_ID = 'record_id'
LABEL_MAP = 'region_label_map'


class Decoder(uv_input.Decoder):
  """Classification records plus the region field, checked by record name.

  The output adds `record_id` (a scalar string) and, when
  `region_field_key` is set, `region_label_map`: the encoded PNG, which
  must be complete (the error names the record).
  """

  def __init__(self, where: str, image_field_key: str, label_field_key: str,
               region_field_key: Optional[str]):
    """Initializes the decoder.

    Args:
      where: A `str` naming the data in errors (config key and pattern).
      image_field_key: A `str` key of the encoded image.
      label_field_key: A `str` key of the (unused) class label.
      region_field_key: A `str` key of the encoded label map, or None when
        regions are computed in the pipeline.
    """
    super().__init__(where, image_field_key, label_field_key)
    self._region_field_key = region_field_key
    self._extra_features = {
        _SOURCE_ID_KEY: tf.io.FixedLenFeature((), tf.string, default_value=''),
        _FILENAME_KEY: tf.io.FixedLenFeature((), tf.string, default_value=''),
    }
    if region_field_key:
      self._extra_features[region_field_key] = tf.io.FixedLenFeature(
          (), tf.string, default_value='')

  def decode(self, serialized_example) -> dict[str, tf.Tensor]:
    decoded = super().decode(serialized_example)
    extra = tf.io.parse_single_example(serialized_example,
                                       self._extra_features)
    record_id = tf.strings.strip(tf.strings.join(
        [extra[_SOURCE_ID_KEY], extra[_FILENAME_KEY]], ' '))
    decoded[RECORD_ID] = record_id
    if self._region_field_key:
      encoded = extra[self._region_field_key]
      message = tf.strings.join([
          f'Missing or malformed region map in {self._where}: record ',
          record_id, f' has no complete PNG under {self._region_field_key!r} '
          '(write it with univision.data.fh_regions).'])
      ok = input_checks.image_format_checks(encoded)['png']
      with tf.control_dependencies([tf.debugging.Assert(ok, [message])]):
        decoded[LABEL_MAP] = tf.identity(encoded)
    return decoded


def sample_region_maps(labels: tf.Tensor, num_regions: int,
                       training: bool) -> tf.Tensor:
  """k binary maps [k, H, W] (float32) from a label map [H, W].

  Args:
    labels: An integer [H, W] label map (segment ids).
    num_regions: An `int` k.
    training: A `bool`; True draws at random (the reference's rule, see the
      module docstring), False takes the ids in increasing order, cycled.

  Returns:
    A float32 tensor, 1 where the pixel belongs to the chosen segment.
  """
  labels = tf.cast(labels, tf.int32)
  ids, _ = tf.unique(tf.reshape(labels, [-1]))
  count = tf.size(ids)
  repeats = (num_regions + count - 1) // count
  if training:
    chosen = tf.random.shuffle(tf.tile(ids, [repeats]))[:num_regions]
  else:
    chosen = tf.tile(tf.sort(ids), [repeats])[:num_regions]
  return tf.cast(tf.equal(labels[tf.newaxis],
                          chosen[:, tf.newaxis, tf.newaxis]), tf.float32)


class Parser:
  """Decoded records -> {'images': [H, W, 3], 'regions': [k, H, W]}."""

  def __init__(self, where: str, output_size: Sequence[int],
               num_regions: int, image_field_key: str,
               fh_params: Optional[fh_regions.FHParams] = None,
               aug_crop: bool = True,
               crop_area_range: Sequence[float] = (0.08, 1.0),
               aug_rand_hflip: bool = True,
               tf_resize_method: str = 'bilinear', dtype: str = 'float32'):
    """Initializes the parser.

    Args:
      where: A `str` naming the data in errors.
      output_size: [height, width] of the outputs.
      num_regions: An `int` k, region maps per image.
      image_field_key: A `str` key of the encoded image.
      fh_params: If set, regions are computed here with these FH settings
        (`tf.numpy_function`); if None they are read from the record.
      aug_crop: A `bool`, random area-and-aspect crop when training.
      crop_area_range: (min, max) fraction of the image area kept.
      aug_rand_hflip: A `bool`, random horizontal flip when training.
      tf_resize_method: A `str` image resize method (labels: nearest).
      dtype: A `str` dtype of the outputs.
    """
    self._where = where
    self._output_size = list(output_size)
    self._num_regions = num_regions
    self._image_field_key = image_field_key
    self._fh_params = fh_params
    self._aug_crop = aug_crop
    self._crop_area_range = tuple(crop_area_range)
    self._aug_rand_hflip = aug_rand_hflip
    self._tf_resize_method = tf_resize_method
    self._dtype = tf.dtypes.as_dtype(dtype)

  def parse_fn(self, is_training: bool):
    return lambda decoded: self._parse(decoded, is_training)

  def _label_map(self, decoded: dict[str, Any],
                 image: tf.Tensor) -> tf.Tensor:
    """The [H, W] int32 label map, checked against the image's size."""
    if self._fh_params is not None:
      labels = tf.numpy_function(
          lambda x: fh_regions.segment(x, self._fh_params), [image],
          tf.uint16, stateful=False)
      return tf.ensure_shape(tf.cast(labels, tf.int32), [None, None])
    labels = tf.io.decode_png(decoded[LABEL_MAP], channels=0,
                              dtype=tf.uint16)
    shape, image_shape = tf.shape(labels), tf.shape(image)
    ok = tf.logical_and(tf.equal(shape[2], 1),
                        tf.reduce_all(tf.equal(shape[:2], image_shape[:2])))
    message = tf.strings.join([
        f'Malformed region map in {self._where}: record ',
        decoded[RECORD_ID], ' has a label map of shape ',
        tf.strings.reduce_join(tf.strings.as_string(shape), separator='x'),
        ' for an image of ',
        tf.strings.reduce_join(tf.strings.as_string(image_shape[:2]),
                               separator='x'), ' (expected HxWx1).'])
    with tf.control_dependencies([tf.debugging.Assert(ok, [message])]):
      return tf.cast(labels[:, :, 0], tf.int32)

  def _crop_and_flip(self, image: tf.Tensor, labels: tf.Tensor
                     ) -> tuple[tf.Tensor, tf.Tensor]:
    if self._aug_crop:
      offset, size, _ = tf.image.sample_distorted_bounding_box(
          tf.shape(image), tf.zeros([1, 0, 4]),
          min_object_covered=self._crop_area_range[0],
          aspect_ratio_range=(3.0 / 4.0, 4.0 / 3.0),
          area_range=self._crop_area_range, max_attempts=10,
          use_image_if_no_bounding_boxes=True)
      image = tf.slice(image, offset, size)
      labels = tf.slice(labels, offset[:2], size[:2])
    if self._aug_rand_hflip:
      flip = tf.random.uniform([]) < 0.5
      image = tf.cond(flip, lambda: image[:, ::-1], lambda: image)
      labels = tf.cond(flip, lambda: labels[:, ::-1], lambda: labels)
    return image, labels

  def _parse(self, decoded: dict[str, Any],
             training: bool) -> dict[str, tf.Tensor]:
    image = tf.io.decode_image(decoded[self._image_field_key], channels=3,
                               expand_animations=False)
    image.set_shape([None, None, 3])
    labels = self._label_map(decoded, image)
    if training:
      image, labels = self._crop_and_flip(image, labels)
    image = tf.image.resize(image, self._output_size,
                            method=self._tf_resize_method)
    image = tf.clip_by_value(image, 0.0, 255.0)
    image = preprocess_ops.normalize_image(
        image, offset=preprocess_ops.MEAN_RGB, scale=preprocess_ops.STDDEV_RGB)
    labels = tf.image.resize(labels[..., tf.newaxis], self._output_size,
                             method='nearest')[..., 0]
    regions = sample_region_maps(labels, self._num_regions, training)
    regions.set_shape([self._num_regions, *self._output_size])
    image.set_shape([*self._output_size, 3])
    return {'images': tf.cast(image, self._dtype),
            'regions': tf.cast(regions, self._dtype)}
