"""TFRecords for weakly supervised localization (WSOL): image, label, boxes, mask.

One tf.Example per image, in Model Garden's key names: `image/encoded`
(PNG or JPEG bytes as given), `image/height`, `image/width`,
`image/source_id`, `image/class/label` (the FINEST label of the hierarchy;
`label_hierarchy` maps it to coarser levels when training),
`image/object/bbox/{ymin,xmin,ymax,xmax}` (normalized; evaluation only -
training sees the image label alone), `image/object/class/label`,
where a mask exists, `image/segmentation/class/encoded` (PNG, 255 on the
object) for PxAP, and where the label is decided by a small part of the
object (`wsol_parts`), `image/segmentation/part/encoded` (PNG, 255 on that
part), to measure how much of a CAM falls on it. `decode` reads them back
inside tf.data.
"""
from typing import Iterable

import numpy as np
import tensorflow as tf
from official.vision.data import image_utils
from official.vision.data import tf_example_builder

from univision.core import input_checks
from univision.data import tfrecords

_MASK_KEY = 'image/segmentation/class/encoded'
_PART_KEY = 'image/segmentation/part/encoded'


def _add_mask(builder, key: str, mask: np.ndarray, height: int, width: int,
              where: str, name: str) -> None:
  if mask.shape != (height, width):
    raise ValueError(f'{where}: {name} shape {mask.shape} is not the '
                     f'image\'s {(height, width)}.')
  builder.add_bytes_feature(key, image_utils.encode_image(
      (mask.astype(np.uint8) * 255)[..., None], 'PNG'))


def _format(encoded_image: bytes) -> str:
  return 'PNG' if encoded_image.startswith(b'\x89PNG') else 'JPEG'


def wsol_example(encoded_image: bytes, height: int, width: int,
                 label: int, boxes: np.ndarray, source_id: str, where: str,
                 mask: np.ndarray | None = None,
                 part_mask: np.ndarray | None = None) -> tf.train.Example:
  """A WSOL tf.Example.

  Args:
    encoded_image: PNG or JPEG bytes of an RGB image.
    height: The image's height in pixels.
    width: The image's width in pixels.
    label: The finest-level class label (0-based).
    boxes: [N, 4] pixel boxes (ymin, xmin, ymax, xmax), max exclusive;
      N may be 0 (training images without boxes).
    source_id: The record's `image/source_id` (e.g. the image path).
    where: Names the record in error messages.
    mask: Optional [height, width] bool object mask.
    part_mask: Optional [height, width] bool mask of the part that decides
      the finest label.

  Raises:
    ValueError: naming `where` for a box outside the image or empty, a
      negative label or a mask of the wrong shape.
  """
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  tfrecords.check_pixel_boxes(boxes, height, width, where,
                              layout=' (ymin, xmin, ymax, xmax)')
  if label < 0:
    raise ValueError(f'{where}: negative class label {label}.')
  builder = tf_example_builder.TfExampleBuilder().add_encoded_image_feature(
      encoded_image, _format(encoded_image), height=height, width=width,
      num_channels=3,
      image_source_id=source_id.encode(), label=int(label))
  tfrecords.add_pixel_boxes(builder, boxes, height, width,
                            [label] * len(boxes))
  if mask is not None:
    _add_mask(builder, _MASK_KEY, mask, height, width, where, 'mask')
  if part_mask is not None:
    _add_mask(builder, _PART_KEY, part_mask, height, width, where,
              'part mask')
  return builder.example


def write_wsol_tfrecords(examples: Iterable[tf.train.Example],
                         output_prefix: str, num_shards: int) -> list[str]:
  """Writes the examples round-robin into shards; returns their paths."""
  return tfrecords.write_sharded(examples, output_prefix, num_shards)


_FEATURES = {
    'image/encoded': tf.io.FixedLenFeature([], tf.string),
    'image/source_id': tf.io.FixedLenFeature([], tf.string, ''),
    'image/class/label': tf.io.FixedLenFeature([], tf.int64),
    'image/object/bbox/ymin': tf.io.VarLenFeature(tf.float32),
    'image/object/bbox/xmin': tf.io.VarLenFeature(tf.float32),
    'image/object/bbox/ymax': tf.io.VarLenFeature(tf.float32),
    'image/object/bbox/xmax': tf.io.VarLenFeature(tf.float32),
    _MASK_KEY: tf.io.FixedLenFeature([], tf.string, ''),
    _PART_KEY: tf.io.FixedLenFeature([], tf.string, ''),
}


def decode(serialized: tf.Tensor, where: str = 'WSOL records'
           ) -> dict[str, tf.Tensor]:
  """One serialized record -> image uint8 [H, W, 3], label, boxes, masks.

  `boxes` are normalized [N, 4] (ymin, xmin, ymax, xmax); `mask` is uint8
  [H, W, 1] (1 on the object) and `has_mask` says whether the record had
  one (if not, `mask` is all zeros); `part_mask` and `has_part` likewise
  for the label-deciding part. A corrupt or truncated image fails with a
  message naming `where` and the record's source id.
  """
  parsed = tf.io.parse_single_example(serialized, _FEATURES)
  encoded = input_checks.check_encoded_image(
      parsed['image/encoded'], parsed['image/source_id'], where)
  image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
  boxes = tf.stack([tf.sparse.to_dense(parsed[f'image/object/bbox/{k}'])
                    for k in ('ymin', 'xmin', 'ymax', 'xmax')], axis=-1)
  shape = tf.shape(image)

  def mask_of(key):
    present = tf.strings.length(parsed[key]) > 0
    return tf.cond(
        present,
        lambda: tf.cast(tf.io.decode_png(parsed[key], channels=1) > 0,
                        tf.uint8),
        lambda: tf.zeros([shape[0], shape[1], 1], tf.uint8)), present

  mask, has_mask = mask_of(_MASK_KEY)
  part_mask, has_part = mask_of(_PART_KEY)
  return {'image': image, 'label': parsed['image/class/label'],
          'boxes': boxes, 'mask': mask, 'has_mask': has_mask,
          'part_mask': part_mask, 'has_part': has_part,
          'source_id': parsed['image/source_id']}
