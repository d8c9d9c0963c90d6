"""Sharded TFRecord writing: whole shards only, the same bytes every run."""
import os

import numpy as np
import tensorflow as tf

from univision.data import tfrecords


def _examples(count):
  return [tf.train.Example(features=tf.train.Features(feature={
      name: tf.train.Feature(int64_list=tf.train.Int64List(value=[i]))
      for name in ('b', 'a', 'c', 'image/class/label', 'z', 'm')}))
          for i in range(count)]


def test_records_are_serialized_deterministically_in_whole_shards(tmp_path):
  # A feature map's default serialization follows insertion (or hash)
  # order, which can differ between processes; records must not.
  examples = _examples(7)
  paths = tfrecords.write_sharded(examples, str(tmp_path / 'x'), 3)
  assert not [f for f in os.listdir(tmp_path) if 'incomplete' in f]
  records = [[r.numpy() for r in tf.data.TFRecordDataset(p)] for p in paths]
  assert [len(r) for r in records] == [3, 2, 2]
  assert records[1][0] == examples[1].SerializeToString(deterministic=True)
  assert records[1][0] != examples[1].SerializeToString()


def test_classification_records_hold_images_and_labels(tmp_path):
  images = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4)
  (path,) = tfrecords.write_classification_tfrecords(
      images, np.array([3, 5]), str(tmp_path / 'c'), 1, 'made_up')
  labels = [tf.train.Example.FromString(r.numpy()).features.feature[
      'image/class/label'].int64_list.value[0]
            for r in tf.data.TFRecordDataset(path)]
  assert labels == [3, 5]
