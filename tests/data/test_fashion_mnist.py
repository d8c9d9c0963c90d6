"""Tests for the IDX reader and the Fashion-MNIST TFRecord builder."""
import gzip
import os

import numpy as np
import pytest
import tensorflow as tf, tf_keras

from tests import conftest
from univision.data import fashion_mnist
from univision.data import idx


def test_idx_round_trip(tmp_path):
  array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
  path = str(tmp_path / 'x-idx3-ubyte.gz')
  conftest.write_idx(path, array)
  np.testing.assert_array_equal(idx.read_idx(path), array)


def test_idx_errors_name_the_file(tmp_path):
  bad_magic = tmp_path / 'bad.gz'
  with gzip.open(bad_magic, 'wb') as f:
    f.write(b'\x01\x02\x03\x04' + b'\x00' * 8)
  with pytest.raises(ValueError, match='bad.gz.*bad magic'):
    idx.read_idx(str(bad_magic))
  truncated = str(tmp_path / 'short-idx1-ubyte.gz')
  conftest.write_idx(truncated, np.zeros([10], np.uint8))
  with gzip.open(truncated, 'rb') as f:
    raw = f.read()
  with gzip.open(truncated, 'wb') as f:
    f.write(raw[:-3])
  with pytest.raises(ValueError, match='short-idx1-ubyte.gz.*says'):
    idx.read_idx(truncated)


def test_missing_file_is_named(tmp_path):
  with pytest.raises(FileNotFoundError, match='train-images-idx3-ubyte.gz'):
    fashion_mnist.read_split(str(tmp_path), 'train')


def test_build_writes_model_garden_records(fake_fmnist_source,
                                           fake_fmnist_tfrecords):
  images, labels = fashion_mnist.read_split(fake_fmnist_source, 'train')
  files = sorted(tf.io.gfile.glob(os.path.join(fake_fmnist_tfrecords,
                                               'train-*')))
  assert len(files) == 8 and files[0].endswith('-00000-of-00008.tfrecord')
  assert not tf.io.gfile.glob(os.path.join(fake_fmnist_tfrecords,
                                           '*.incomplete'))
  records = {}
  for raw in tf.data.TFRecordDataset(files):
    example = tf.train.Example.FromString(raw.numpy())
    feature = example.features.feature
    source_id = feature['image/source_id'].bytes_list.value[0].decode()
    records[source_id] = (feature['image/encoded'].bytes_list.value[0],
                          feature['image/class/label'].int64_list.value[0])
  assert len(records) == len(images)
  encoded, label = records['fashion_mnist/train/5']
  assert label == labels[5]
  np.testing.assert_array_equal(tf.io.decode_png(encoded).numpy()[..., 0],
                                images[5])
