"""Tests for the distillation task: loss, frozen teacher, steps, errors."""
import os

import numpy as np
import pytest
import tensorflow as tf, tf_keras
from official.core import exp_factory
from official.core import task_factory

from univision import registry_imports  # pylint: disable=unused-import
from univision.core import config_parsing
from univision.tasks import distillation


def _kl(p, q):
  return float(np.sum(p * np.log(p / q)))


def _softmax(x):
  e = np.exp(x - np.max(x))
  return e / e.sum()


def test_loss_on_hand_computed_logits():
  student = np.array([[1.0, 2.0, 0.5]], np.float32)
  teacher = np.array([[2.0, 0.0, 1.0]], np.float32)
  labels = np.array([[0.0, 1.0, 0.0]], np.float32)
  t, alpha = 2.0, 0.3
  losses = distillation.distillation_loss(
      labels, student, teacher, alpha=alpha, temperature=t)
  ce = -np.log(_softmax(student[0])[1])
  kd = t * t * _kl(_softmax(teacher[0] / t), _softmax(student[0] / t))
  np.testing.assert_allclose(losses['ce_loss'], ce, rtol=1e-5)
  np.testing.assert_allclose(losses['kd_loss'], kd, rtol=1e-5)
  np.testing.assert_allclose(losses['loss'], alpha * ce + (1 - alpha) * kd,
                             rtol=1e-5)


def test_temperature_softens_and_t_squared_scales():
  student = tf.constant([[3.0, -1.0, 0.0, 1.0]])
  teacher = tf.constant([[0.0, 2.0, 1.0, -2.0]])
  labels = tf.one_hot([1], 4)
  kd = {t: float(distillation.distillation_loss(
      labels, student, teacher, alpha=0.0, temperature=t)['kd_loss'])
        for t in (1.0, 4.0)}
  kl_t4 = _kl(_softmax(teacher.numpy()[0] / 4),
              _softmax(student.numpy()[0] / 4))
  np.testing.assert_allclose(kd[4.0], 16 * kl_t4, rtol=1e-5)
  # The KL of the softened distributions is smaller, but T^2 keeps it in
  # the same range as at T=1.
  assert kl_t4 < kd[1.0] / 4 < 16 * kl_t4


def test_alpha_one_is_plain_ce_and_identical_models_give_zero_kl():
  logits = tf.constant([[0.2, 1.5, -0.3], [2.0, 0.1, 0.0]])
  labels = tf.one_hot([1, 0], 3)
  plain = tf_keras.losses.categorical_crossentropy(labels, logits,
                                                   from_logits=True)
  teacher = tf.constant([[5.0, -5.0, 0.0], [0.0, 0.0, 9.0]])
  losses = distillation.distillation_loss(labels, logits, teacher, alpha=1.0,
                                          temperature=3.0)
  np.testing.assert_allclose(losses['loss'], tf.reduce_mean(plain), rtol=1e-6)
  same = distillation.distillation_loss(labels, logits, logits, alpha=0.0,
                                        temperature=3.0)
  np.testing.assert_allclose(same['kd_loss'], 0.0, atol=1e-6)
  np.testing.assert_allclose(same['loss'], 0.0, atol=1e-6)


@pytest.fixture(scope='module')
def teacher_checkpoint(tmp_path_factory) -> str:
  """A random 32x32 MNv4-Conv-S classifier saved as Model Garden does."""
  params = exp_factory.get_exp_config('mnv4_fashion_mnist')
  params.override({'task': {'model': {'input_size': [32, 32, 3]}}})
  model = task_factory.get_task(params.task).build_model()
  folder = str(tmp_path_factory.mktemp('teacher'))
  tf.train.Checkpoint(model=model).save(os.path.join(folder, 'ckpt'))
  return folder


def _task(tfrecords_dir, teacher_checkpoint, **task_overrides):
  params = exp_factory.get_exp_config('mnv4_distill_fashion_mnist')
  params.override({'task': {
      'model': {'input_size': [32, 32, 3]},
      'teacher': {'input_size': [32, 32, 3]},
      'teacher_checkpoint': teacher_checkpoint,
      'train_data': {'input_path': os.path.join(tfrecords_dir, 'train-*'),
                     'global_batch_size': 8},
      'validation_data': {'input_path': os.path.join(tfrecords_dir, 'test-*'),
                          'global_batch_size': 8},
      **task_overrides,
  }})
  return task_factory.get_task(params.task), params


def test_train_step_changes_only_the_student(fake_fmnist_tfrecords,
                                             teacher_checkpoint):
  task, params = _task(fake_fmnist_tfrecords, teacher_checkpoint)
  model = task.build_model()
  assert not task.teacher.trainable_variables
  images, labels = next(iter(task.build_inputs(params.task.train_data)))
  assert images.shape == (8, 32, 32, 3) and labels.shape == (8, 10)
  teacher_before = [v.numpy() for v in task.teacher.variables]
  student_before = [v.numpy() for v in model.trainable_variables]
  optimizer = tf_keras.optimizers.SGD(learning_rate=0.1)
  metrics = task.build_metrics(training=True)
  logs = task.train_step((images, labels), model, optimizer, metrics)
  assert np.isfinite(logs['loss'])
  assert {m.name: float(m.result()) for m in metrics}['kd_loss'] > 0
  for before, v in zip(teacher_before, task.teacher.variables):
    np.testing.assert_array_equal(before, v.numpy(), err_msg=v.name)
  changed = [not np.array_equal(b, v.numpy())
             for b, v in zip(student_before, model.trainable_variables)]
  assert all(changed)
  # The teacher is no part of the student, so gets no gradient.
  student_ids = {id(v) for v in model.trainable_variables}
  teacher_ids = {id(v) for v in task.teacher.variables}
  assert student_ids.isdisjoint(teacher_ids)


def test_validation_step_reports_student_and_teacher(fake_fmnist_tfrecords,
                                                     teacher_checkpoint):
  task, params = _task(fake_fmnist_tfrecords, teacher_checkpoint)
  model = task.build_model()
  metrics = task.build_metrics(training=False)
  dataset = task.build_inputs(params.task.validation_data)
  for inputs in dataset.take(2):
    logs = task.validation_step(inputs, model, metrics)
    assert np.isfinite(logs['loss'])
  results = {m.name: float(m.result()) for m in metrics}
  assert set(results) == {'accuracy', 'top_5_accuracy', 'teacher_accuracy'}
  assert all(0.0 <= r <= 1.0 for r in results.values())


def test_teacher_at_another_input_size_sees_resized_images(
    fake_fmnist_tfrecords, teacher_checkpoint):
  task, params = _task(fake_fmnist_tfrecords, teacher_checkpoint,
                       model={'input_size': [48, 48, 3]})
  model = task.build_model()
  images, labels = next(iter(task.build_inputs(params.task.train_data)))
  assert images.shape == (8, 48, 48, 3)
  assert task.teacher_logits(images).shape == (8, 10)
  task.train_step((images, labels), model, tf_keras.optimizers.SGD(0.1))


def test_missing_teacher_checkpoint_names_key(fake_fmnist_tfrecords,
                                              tmp_path):
  task, _ = _task(fake_fmnist_tfrecords, str(tmp_path))
  with pytest.raises(FileNotFoundError,
                     match=r'task.teacher_checkpoint=.*no checkpoint'):
    task.build_model()
  task, _ = _task(fake_fmnist_tfrecords, '')
  with pytest.raises(ValueError, match=r'task.teacher_checkpoint is empty'):
    task.build_model()


def test_teacher_checkpoint_of_another_model_names_key(fake_fmnist_tfrecords,
                                                       teacher_checkpoint):
  task, _ = _task(fake_fmnist_tfrecords, teacher_checkpoint, teacher={
      'backbone': {'mobilenet_v4': {'model_id': 'MobileNetV4ConvMedium'}}})
  with pytest.raises(ValueError, match=r'task.teacher_checkpoint=.* does not '
                     r'hold task.teacher \(backbone mobilenet_v4'):
    task.build_model()


@pytest.mark.parametrize('overrides, key', [
    ({'distillation': {'alpha': 1.5}}, r'task.distillation.alpha'),
    ({'distillation': {'temperature': 0.0}}, r'task.distillation.temperature'),
    ({'teacher': {'num_classes': 5}}, r'task.teacher.num_classes'),
    ({'mixing': {'plain_weight': 0.0, 'randaugment_weight': 0.0,
                 'extreme_mixup_weight': 0.0}}, r'task.mixing'),
])
def test_bad_distillation_keys_are_named(fake_fmnist_tfrecords,
                                         teacher_checkpoint, overrides, key):
  task, _ = _task(fake_fmnist_tfrecords, teacher_checkpoint, **overrides)
  with pytest.raises(ValueError, match=key):
    task.build_model()


@pytest.mark.parametrize('mixup_weight', [0.0, 1.0])
def test_task_inputs_follow_the_mixing_weights(fake_fmnist_tfrecords,
                                               teacher_checkpoint,
                                               mixup_weight):
  task, params = _task(fake_fmnist_tfrecords, teacher_checkpoint, mixing={
      'plain_weight': 1.0, 'randaugment_weight': 1.0,
      'extreme_mixup_weight': mixup_weight})
  labels = np.concatenate([l.numpy() for _, l in task.build_inputs(
      params.task.train_data).take(4)])
  np.testing.assert_allclose(labels.sum(-1), 1.0, rtol=1e-5)
  num_soft = np.sum(labels.max(-1) < 0.999)
  if mixup_weight:  # A third are Mixup views, most of two classes.
    assert 0 < num_soft < len(labels) / 2
  else:
    assert num_soft == 0


def test_demo_recipe_is_the_labels_only_one_but_the_task():
  root = os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))))
  experiments = os.path.join(root, 'univision', 'configs', 'experiments')
  distilled = config_parsing.parse_experiment(
      'mnv4_distill_fashion_mnist', [os.path.join(
          experiments, 'distillation',
          'fashion_mnist_mnv4_conv_small_distill_cpu.yaml')])
  labels_only = config_parsing.parse_experiment(
      'mnv4_fashion_mnist', [os.path.join(
          experiments, 'image_classification',
          'fashion_mnist_mnv4_conv_small_cpu.yaml')])
  assert distilled.trainer.as_dict() == labels_only.trainer.as_dict()
  assert distilled.runtime.as_dict() == labels_only.runtime.as_dict()
  for key in ('model', 'losses', 'train_data', 'validation_data'):
    assert (getattr(distilled.task, key).as_dict() ==
            getattr(labels_only.task, key).as_dict()), key
  assert distilled.task.teacher.as_dict() == labels_only.task.model.as_dict()
