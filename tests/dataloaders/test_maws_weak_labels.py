"""Tests for weak labels: groups, fixed-per-image noise, the task's pipeline."""
import os

import numpy as np
import pytest
import tensorflow as tf
import yaml
from official.core import exp_factory
from official.core import task_factory

from tests import conftest
from univision import registry_imports  # pylint: disable=unused-import
from univision.data import wsol_composites
from univision.dataloaders import maws_weak_labels
from univision.tasks import maws_weak_classification

WEAK_YAML = os.path.join(conftest.REPO, 'univision', 'configs', 'experiments',
                         'maws', 'fashion_mnist_vit_tiny_2_weak_cpu.yaml')
GROUPS = list(wsol_composites.HIERARCHY.parents['coarse'])


def _keys(n: int) -> tf.Tensor:
  return tf.constant([f'image {i}'.encode() for i in range(n)])


def test_label_map_gives_the_coarse_groups_without_noise():
  labels = tf.range(10, dtype=tf.int64)
  got = maws_weak_labels.weaken(labels, _keys(10), GROUPS, 0.0, 4)
  np.testing.assert_array_equal(got, GROUPS)
  assert got.dtype == tf.int64
  np.testing.assert_array_equal(
      maws_weak_labels.weaken(labels, _keys(10), [], 0.0, 10), labels)


def test_noise_flips_the_given_fraction_to_other_classes_fixed_per_image():
  n = 20_000
  labels = tf.constant(np.arange(n) % 4, tf.int64)
  weak = maws_weak_labels.weaken(labels, _keys(n), [], 0.25, 4, seed=3).numpy()
  flipped = weak != labels.numpy()
  assert abs(flipped.mean() - 0.25) < 0.015
  # Wrong labels are spread over the three other classes.
  offsets = (weak[flipped] - labels.numpy()[flipped]) % 4
  np.testing.assert_allclose(np.bincount(offsets, minlength=4)[1:] /
                             flipped.sum(), [1 / 3] * 3, atol=0.03)
  # The same image keeps its label on every epoch; another seed flips
  # other images.
  np.testing.assert_array_equal(
      maws_weak_labels.weaken(labels, _keys(n), [], 0.25, 4, seed=3), weak)
  other = maws_weak_labels.weaken(labels, _keys(n), [], 0.25, 4, seed=4).numpy()
  assert 0.5 < (other != labels.numpy()).mean() / flipped.mean() < 1.5
  assert (flipped & (other != labels.numpy())).mean() < 0.1


@pytest.mark.parametrize('label_map,noise_rate,num_classes,message', [
    ([0, 1, 4], 0.0, 4, r'task.weak_labels.label_map=\[0, 1, 4\].*\[0, 4\)'),
    ([], 1.0, 4, r'task.weak_labels.noise_rate=1.0 must be in \[0, 1\)'),
    ([], 0.1, 1, 'at least 2 classes'),
])
def test_check_names_the_key(label_map, noise_rate, num_classes, message):
  with pytest.raises(ValueError, match=message):
    maws_weak_labels.check(label_map, noise_rate, num_classes,
                           'task.weak_labels')


def test_maws_yaml_label_map_is_the_wsol_hierarchy():
  with open(WEAK_YAML) as f:
    task = yaml.safe_load(f)['task']
  assert task['weak_labels']['label_map'] == GROUPS
  assert task['model']['num_classes'] == len(wsol_composites.COARSE)


def _weak_task(tfrecords_dir: str, noise_rate: float, label_map=GROUPS,
               num_classes: int = 4):
  params = exp_factory.get_exp_config('vit_weak_fashion_mnist')
  params.override({'task': {
      'weak_labels': {'label_map': label_map, 'noise_rate': noise_rate},
      'model': {'num_classes': num_classes},
      'train_data': {'input_path': os.path.join(tfrecords_dir, 'train-*'),
                     'global_batch_size': 96, 'aug_rand_hflip': False},
      'validation_data': {'input_path': os.path.join(tfrecords_dir, 'test-*'),
                          'global_batch_size': 32}}})
  return task_factory.get_task(params.task), params


def _true_labels(tfrecords_dir: str, split: str) -> dict[bytes, int]:
  """Label of each encoded image in the records."""
  found = {}
  for path in tf.io.gfile.glob(os.path.join(tfrecords_dir, f'{split}-*')):
    for record in tf.data.TFRecordDataset(path):
      example = tf.train.Example.FromString(record.numpy())
      feature = example.features.feature
      found[feature['image/encoded'].bytes_list.value[0]] = (
          feature['image/class/label'].int64_list.value[0])
  return found


def test_task_decoder_weakens_training_labels_only(fake_fmnist_tfrecords):
  task, params = _weak_task(fake_fmnist_tfrecords, noise_rate=0.5)
  assert isinstance(task, maws_weak_classification.WeakLabelClassificationTask)
  truth = _true_labels(fake_fmnist_tfrecords, 'train')
  decoder = task.build_decoder(params.task.train_data)
  files = tf.io.gfile.glob(os.path.join(fake_fmnist_tfrecords, 'train-*'))
  decoded = [decoder.decode(r) for r in tf.data.TFRecordDataset(files)]
  weak = np.array([int(d['image/class/label']) for d in decoded])
  groups = np.array([GROUPS[truth[d['image/encoded'].numpy()]]
                     for d in decoded])
  assert len(weak) == 96 and 0.3 < (weak != groups).mean() < 0.7
  # Validation: the clean groups of every image.
  images, labels = next(iter(task.build_inputs(params.task.validation_data)))
  assert images.shape == (32, 32, 32, 3)
  truth = _true_labels(fake_fmnist_tfrecords, 'test')
  decoder = task.build_decoder(params.task.validation_data)
  for record in tf.data.TFRecordDataset(tf.io.gfile.glob(
      os.path.join(fake_fmnist_tfrecords, 'test-*'))):
    decoded = decoder.decode(record)
    assert int(decoded['image/class/label']) == GROUPS[
        truth[decoded['image/encoded'].numpy()]]
  assert set(labels.numpy()) <= {0, 1, 2, 3}


def test_task_rejects_a_label_map_beyond_num_classes(fake_fmnist_tfrecords):
  task, _ = _weak_task(fake_fmnist_tfrecords, 0.0, num_classes=3)
  with pytest.raises(ValueError, match=r'task.weak_labels.label_map=.*'
                     r'task.model.num_classes'):
    task.build_model()
