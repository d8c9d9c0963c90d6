"""Tests for R-MAE through the MAE task: region inputs, steps, bad records."""
import os

import numpy as np
import pytest
import tensorflow as tf
from official.core import exp_factory
from official.core import task_factory

from univision.data import fh_regions
from univision.modeling import rmae
from univision.tasks import mae as mae_task

_FH = fh_regions.FHParams(scale=200.0, min_size=30)


@pytest.fixture(scope='module')
def region_tfrecords(tmp_path_factory, fake_fmnist_tfrecords) -> str:
  """The fake Fashion-MNIST TFRecords with FH regions added offline."""
  out = str(tmp_path_factory.mktemp('fmnist_regions'))
  fh_regions.add_regions(os.path.join(fake_fmnist_tfrecords, '*'), out, _FH)
  return out


def _task(tfrecords_dir, **task_overrides):
  params = exp_factory.get_exp_config('vit_rmae_fashion_mnist')
  params.override({'task': {
      'model': {'decoder_dim': 32, 'decoder_depth': 1,
                'region': {'decoder_dim': 16, 'encoder_dim': 16,
                           'cross_depth': 1}},
      'train_data': {'input_path': os.path.join(tfrecords_dir, 'train-*'),
                     'global_batch_size': 8},
      'validation_data': {'input_path': os.path.join(tfrecords_dir, 'test-*'),
                          'global_batch_size': 8},
      **task_overrides}})
  return task_factory.get_task(params.task), params


def test_offline_regions_are_stored_per_record(region_tfrecords,
                                               fake_fmnist_tfrecords):
  record = next(iter(tf.data.TFRecordDataset(
      sorted(tf.io.gfile.glob(os.path.join(region_tfrecords, 'train-*')))[0])))
  example = tf.train.Example.FromString(record.numpy())
  labels = tf.io.decode_png(example.features.feature[
      fh_regions.REGION_KEY].bytes_list.value[0], dtype=tf.uint16).numpy()
  image = tf.io.decode_image(example.features.feature[
      'image/encoded'].bytes_list.value[0], channels=3).numpy()
  assert labels.shape == (28, 28, 1)
  np.testing.assert_array_equal(labels[..., 0], fh_regions.segment(image, _FH))
  assert len(os.listdir(region_tfrecords)) == len(
      os.listdir(fake_fmnist_tfrecords))  # Sharding carries over.


def test_task_runs_a_train_and_a_validation_step(region_tfrecords):
  task, params = _task(region_tfrecords)
  assert isinstance(task, mae_task.MAETask)
  model = task.build_model()
  assert isinstance(model, rmae.RegionMaskedAutoencoder)
  inputs = next(iter(task.build_inputs(params.task.train_data)))
  assert inputs['images'].shape == (8, 32, 32, 3)
  assert inputs['regions'].shape == (8, 4, 32, 32)
  regions = inputs['regions'].numpy()
  assert set(np.unique(regions)) <= {0.0, 1.0}
  assert (regions.reshape(8, 4, -1).sum(axis=-1) > 0).all()  # No empty map.
  params.override({'trainer': {'optimizer_config': {
      'warmup': {'linear': {'warmup_learning_rate': 1e-4}}}}})
  optimizer = task.create_optimizer(params.trainer.optimizer_config,
                                    params.runtime)
  metrics = task.build_metrics()
  before = [v.numpy() for v in model.trainable_variables]
  logs = task.train_step(inputs, model, optimizer, metrics)
  parts = {m.name: float(m.result()) for m in metrics}
  assert set(parts) == {'mae_loss', 'region_loss'}
  assert float(logs['loss']) == pytest.approx(
      parts['mae_loss'] + params.task.region_loss_weight *
      parts['region_loss'], rel=1e-5)
  assert all(not np.array_equal(a, v.numpy())
             for a, v in zip(before, model.trainable_variables)
             if 'region' in v.name)  # The region branch trains too.
  inputs = next(iter(task.build_inputs(params.task.validation_data)))
  first = float(task.validation_step(inputs, model)['loss'])
  second = float(task.validation_step(inputs, model)['loss'])
  assert np.isfinite(first) and first == second  # Fixed mask and regions.


def test_in_pipeline_felzenszwalb_gives_the_same_maps(fake_fmnist_tfrecords,
                                                      region_tfrecords):
  """Validation inputs are deterministic: online FH must equal offline."""
  online, params = _task(fake_fmnist_tfrecords, regions={
      'type': 'felzenszwalb', 'scale': _FH.scale, 'min_size': _FH.min_size})
  offline, offline_params = _task(region_tfrecords)
  a = next(iter(online.build_inputs(params.task.validation_data)))
  b = next(iter(offline.build_inputs(offline_params.task.validation_data)))
  np.testing.assert_array_equal(a['regions'], b['regions'])
  np.testing.assert_array_equal(a['images'], b['images'])


def _write(path: str, labels: np.ndarray | None) -> None:
  image = np.zeros([28, 28, 3], np.uint8)
  example = tf.train.Example()
  feature = example.features.feature
  feature['image/encoded'].bytes_list.value[:] = [
      tf.io.encode_png(image).numpy()]
  feature['image/source_id'].bytes_list.value[:] = [b'bad/7']
  feature['image/class/label'].int64_list.value[:] = [0]
  if labels is not None:
    feature[fh_regions.REGION_KEY].bytes_list.value[:] = [
        tf.io.encode_png(labels).numpy()]
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with tf.io.TFRecordWriter(path) as writer:
    writer.write(example.SerializeToString())


@pytest.mark.parametrize('labels,message', [
    (np.zeros([20, 28, 1], np.uint16),
     r'Malformed region map .* record bad/7 has a label map of shape 20x28x1 '
     r'for an image of 28x28'),
    (None, r'Missing or malformed region map .* record bad/7 has no complete '
     r'PNG'),
])
def test_malformed_region_maps_name_the_record(tmp_path, labels, message):
  _write(str(tmp_path / 'train-00000-of-00001.tfrecord'), labels)
  task, params = _task(str(tmp_path))
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    next(iter(task.build_inputs(params.task.train_data)))


def test_bad_region_config_is_named(region_tfrecords):
  task, _ = _task(region_tfrecords, model={'region': {'num_regions': 0}})
  with pytest.raises(ValueError, match='task.model.region.num_regions=0'):
    task.build_model()
  task, params = _task(region_tfrecords, regions={'type': 'sam'})
  with pytest.raises(ValueError, match="task.regions.type='sam'"):
    task.build_inputs(params.task.train_data)
