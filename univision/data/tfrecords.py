"""Writes image classification TFRecords in Model Garden's tf.Example format.

Keys (those `official.vision` classification readers use): `image/encoded`
(PNG), `image/format`, `image/height`, `image/width`, `image/channels`,
`image/source_id` and `image/class/label`.
"""
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

  Files are written under a temporary name and renamed when complete, so an
  interrupted run never leaves a truncated file under the final name.

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
  os.makedirs(os.path.dirname(output_prefix) or '.', exist_ok=True)
  paths = shard_paths(output_prefix, num_shards)
  writers = [tf.io.TFRecordWriter(p + '.incomplete') for p in paths]
  for i, (image, label) in enumerate(zip(images, labels)):
    example = (tf_example_builder.TfExampleBuilder()
               .add_image_matrix_feature(
                   image, 'PNG', f'{source_prefix}/{i}'.encode(),
                   label=int(label))
               .example)
    writers[i % num_shards].write(example.SerializeToString())
  for writer, path in zip(writers, paths):
    writer.close()
    os.replace(path + '.incomplete', path)
  logging.info('Wrote %d records to %s-*', len(images), output_prefix)
  return paths
