"""Tests for the classification task: inputs, model, bad data."""
import os

import numpy as np
import pytest
import tensorflow as tf, tf_keras
from official.core import exp_factory
from official.core import task_factory
from official.vision.ops import preprocess_ops

from univision import registry_imports  # pylint: disable=unused-import
from univision.modeling.backbones import mobilenet_v4
from univision.tasks import image_classification


def _task(tfrecords_dir, **data_overrides):
  params = exp_factory.get_exp_config('mnv4_fashion_mnist')
  params.override({'task': {
      'model': {'input_size': [32, 32, 3]},
      'train_data': {'input_path': os.path.join(tfrecords_dir, 'train-*'),
                     'global_batch_size': 8, **data_overrides},
      'validation_data': {'input_path': os.path.join(tfrecords_dir, 'test-*'),
                          'global_batch_size': 8},
  }})
  return task_factory.get_task(params.task), params


def test_task_builds_univision_model_and_batches(fake_fmnist_tfrecords):
  task, params = _task(fake_fmnist_tfrecords)
  assert isinstance(task, image_classification.ImageClassificationTask)
  model = task.build_model()
  assert isinstance(model.backbone, mobilenet_v4.MobileNetV4)
  images, labels = next(iter(task.build_inputs(params.task.train_data)))
  assert images.shape == (8, 32, 32, 3) and labels.shape == (8,)
  assert model(images, training=False).shape == (8, 10)
  images, _ = next(iter(task.build_inputs(params.task.validation_data)))
  assert images.shape == (8, 32, 32, 3)


def test_preprocessing_sets_the_mean_and_std(fake_fmnist_tfrecords):
  task, params = _task(fake_fmnist_tfrecords)
  imagenet, _ = next(iter(task.build_inputs(params.task.validation_data)))
  params.override({'task': {'preprocessing': {
      'mean_rgb': [127.5] * 3, 'stddev_rgb': [127.5] * 3}}})
  inception_task = task_factory.get_task(params.task)
  inception, _ = next(iter(inception_task.build_inputs(
      params.task.validation_data)))
  pixels = imagenet * preprocess_ops.STDDEV_RGB + preprocess_ops.MEAN_RGB
  np.testing.assert_allclose(inception, pixels / 127.5 - 1.0, atol=1e-5)
  assert float(tf.reduce_min(inception)) >= -1.0 - 1e-5


def test_crop_area_range_reaches_the_parser(fake_fmnist_tfrecords,
                                            monkeypatch):
  seen = {}
  real_parser = image_classification.classification_input.Parser

  def recording_parser(**kwargs):
    seen.update(kwargs)
    return real_parser(**kwargs)

  monkeypatch.setattr(image_classification.classification_input, 'Parser',
                      recording_parser)
  task, params = _task(fake_fmnist_tfrecords, crop_area_range=[0.6, 0.9])
  task.build_inputs(params.task.train_data)
  assert tuple(seen['crop_area_range']) == (0.6, 0.9)


def test_missing_data_names_key(tmp_path):
  task, params = _task(str(tmp_path))
  with pytest.raises(FileNotFoundError,
                     match=r'task.train_data.input_path: no file matches'):
    task.build_inputs(params.task.train_data)


def write_corrupt_copy(source_dir: str, out_dir: str,
                       bad_index: int | None) -> None:
  """Copies a train shard, truncating the PNG of record `bad_index` (None:
  of every record)."""
  os.makedirs(out_dir, exist_ok=True)
  path = sorted(tf.io.gfile.glob(os.path.join(source_dir, 'train-*')))[0]
  with tf.io.TFRecordWriter(os.path.join(out_dir, 'train-0.tfrecord')) as w:
    for i, raw in enumerate(tf.data.TFRecordDataset(path)):
      example = tf.train.Example.FromString(raw.numpy())
      if bad_index is None or i == bad_index:
        image = example.features.feature['image/encoded'].bytes_list
        image.value[0] = image.value[0][:40]
      w.write(example.SerializeToString())


def test_corrupt_record_is_named(fake_fmnist_tfrecords, tmp_path):
  write_corrupt_copy(fake_fmnist_tfrecords, str(tmp_path), bad_index=3)
  task, params = _task(str(tmp_path))
  dataset = task.build_inputs(params.task.train_data)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'Corrupt or truncated image record in '
                     r'task.train_data.input_path=.*: record '
                     r'fashion_mnist/train/24 '):
    for _ in dataset.take(20):
      pass
