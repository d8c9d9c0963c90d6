"""Writes classification and detection TFRecords in Model Garden's format.

Keys (those `official.vision` readers use): `image/encoded` (PNG),
`image/format`, `image/height`, `image/width`, `image/channels`,
`image/source_id`; classification adds `image/class/label`, detection adds
`image/object/bbox/{ymin,xmin,ymax,xmax}` (normalized to [0, 1]),
`image/object/class/label`, `image/object/area` (pixels) and
`image/object/is_crowd`.

Files are written under a temporary name and renamed when complete, so an
interrupted run never leaves a truncated file under the final name.
"""
from typing import Iterable
import os

from absl import logging
import numpy as np
import tensorflow as tf, tf_keras
from official.vision.data import tf_example_builder


def shard_paths(output_prefix: str, num_shards: int) -> list[str]:
  """Model Garden-style shard names: `<prefix>-00000-of-00004.tfrecord`."""
  return [f'{output_prefix}-{i:05d}-of-{num_shards:05d}.tfrecord'
          for i in range(num_shards)]


def write_classification_tfrecords(images: np.ndarray, labels: np.ndarray,
                                   output_prefix: str, num_shards: int,
                                   source_prefix: str) -> list[str]:
  """Writes images and labels round-robin into `num_shards` TFRecord files.

  Args:
    images: A uint8 array [N, H, W] (grayscale) or [N, H, W, C].
    labels: An int array [N].
    output_prefix: A `str` path prefix of the shards.
    num_shards: An `int` number of shards.
    source_prefix: A `str`; record i gets source id `<source_prefix>/<i>`.

  Returns:
    The shard paths.

  Raises:
    ValueError: if images and labels disagree in length or dtype.
  """
  if len(images) != len(labels):
    raise ValueError(f'{output_prefix}: {len(images)} images but '
                     f'{len(labels)} labels.')
  if images.dtype != np.uint8:
    raise ValueError(f'{output_prefix}: images must be uint8, got '
                     f'{images.dtype}.')
  if images.ndim == 3:
    images = images[..., np.newaxis]
  examples = (
      tf_example_builder.TfExampleBuilder().add_image_matrix_feature(
          image, 'PNG', f'{source_prefix}/{i}'.encode(),
          label=int(label)).example
      for i, (image, label) in enumerate(zip(images, labels)))
  paths = write_sharded(examples, output_prefix, num_shards)
  logging.info('Wrote %d records to %s-*', len(images), output_prefix)
  return paths


def write_sharded(examples: Iterable[tf.train.Example], output_prefix: str,
                   num_shards: int) -> list[str]:
  """Writes examples round-robin into shards, each renamed when complete.

  Serialized deterministically (a feature map's keys in a fixed order), so
  the same examples give the same bytes in every run.
  """
  os.makedirs(os.path.dirname(output_prefix) or '.', exist_ok=True)
  paths = shard_paths(output_prefix, num_shards)
  writers = [tf.io.TFRecordWriter(p + '.incomplete') for p in paths]
  for i, example in enumerate(examples):
    writers[i % num_shards].write(example.SerializeToString(
        deterministic=True))
  for writer, path in zip(writers, paths):
    writer.close()
    os.replace(path + '.incomplete', path)
  return paths


def check_pixel_boxes(boxes: np.ndarray, height: int, width: int,
                      where: str, layout: str = '') -> None:
  """Checks that every box lies inside the image and is not empty.

  Args:
    boxes: [N, 4] pixel boxes (ymin, xmin, ymax, xmax), max exclusive.
    height: The image's height in pixels.
    width: The image's width in pixels.
    where: Names the record in the error.
    layout: A `str` written after the box in the error (e.g. the order of
      its coordinates).

  Raises:
    ValueError: `'{where}: box [...]{layout} is empty or outside the HxW
      image.'` for the first bad box.
  """
  bad = ((boxes[:, 0] < 0) | (boxes[:, 1] < 0) | (boxes[:, 2] > height) |
         (boxes[:, 3] > width) | (boxes[:, 2] <= boxes[:, 0]) |
         (boxes[:, 3] <= boxes[:, 1]))
  if bad.any():
    raise ValueError(f'{where}: box {boxes[bad][0].tolist()}{layout} is empty '
                     f'or outside the {height}x{width} image.')


def add_pixel_boxes(builder: tf_example_builder.TfExampleBuilder,
                    boxes: np.ndarray, height: int, width: int,
                    labels: Iterable[int]) -> None:
  """Adds [N, 4] pixel boxes and their labels, normalized to [0, 1]."""
  builder.add_boxes_feature(
      xmins=(boxes[:, 1] / width).tolist(),
      xmaxs=(boxes[:, 3] / width).tolist(),
      ymins=(boxes[:, 0] / height).tolist(),
      ymaxs=(boxes[:, 2] / height).tolist(),
      labels=[int(l) for l in labels])


def detection_example(image: np.ndarray, boxes: np.ndarray,
                      labels: np.ndarray, source_id: int,
                      where: str) -> tf.train.Example:
  """A detection tf.Example.

  Args:
    image: A uint8 [H, W, 3] image.
    boxes: [N, 4] pixel boxes (ymin, xmin, ymax, xmax), max exclusive.
    labels: [N] class ids (1-based; 0 is background).
    source_id: The record's `image/source_id`: a number, because Model
      Garden's detection parser converts it to one (for COCO image ids).
    where: Names the record in error messages.

  Raises:
    ValueError: naming `where` for a box outside the image or empty.
  """
  height, width = image.shape[:2]
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  if len(boxes) != len(labels):
    raise ValueError(f'{where}: {len(boxes)} boxes but {len(labels)} '
                     'labels.')
  check_pixel_boxes(boxes, height, width, where)
  builder = tf_example_builder.TfExampleBuilder().add_image_matrix_feature(
      image, 'PNG', str(int(source_id)).encode())
  add_pixel_boxes(builder, boxes, height, width, labels)
  areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
  builder.add_floats_feature('image/object/area', areas.tolist())
  builder.add_ints_feature('image/object/is_crowd', [0] * len(labels))
  return builder.example


def write_detection_tfrecords(
    examples: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
    output_prefix: str, num_shards: int, first_source_id: int = 0
) -> list[str]:
  """Writes (image, pixel boxes, labels) triples as detection TFRecords.

  Record i gets source id `first_source_id + i`; see `detection_example`.

  Returns:
    The shard paths.
  """
  records = (detection_example(image, boxes, labels, first_source_id + i,
                               where=f'{output_prefix} record {i}')
             for i, (image, boxes, labels) in enumerate(examples))
  paths = write_sharded(records, output_prefix, num_shards)
  logging.info('Wrote detection records to %s-*', output_prefix)
  return paths
