"""Tests for the MAE task: inputs, steps, optimizer recipe, checkpoints."""
import os

import numpy as np
import pytest
import tensorflow as tf
from official.core import exp_factory
from official.core import task_factory
from official.modeling import optimization

from univision.modeling import hiera_mae
from univision.modeling import mae
from univision.tasks import mae as mae_task


# Experiment -> its model overrides and batch size at test scale.
_TEST_SCALE = {'vit_mae_fashion_mnist': ({}, 8),
               'hiera_mae_fashion_mnist': ({'input_size': [64, 64, 3]}, 4)}


def task_for(tfrecords_dir, experiment='vit_mae_fashion_mnist',
             **model_overrides):
  """The experiment's task at test scale (a one-block, 32-wide decoder)."""
  model, batch = _TEST_SCALE[experiment]
  params = exp_factory.get_exp_config(experiment)
  params.override({'task': {
      'model': {'decoder_dim': 32, 'decoder_depth': 1, **model,
                **model_overrides},
      'train_data': {'input_path': os.path.join(tfrecords_dir, 'train-*'),
                     'global_batch_size': batch},
      'validation_data': {'input_path': os.path.join(tfrecords_dir, 'test-*'),
                          'global_batch_size': batch},
  }})
  return task_factory.get_task(params.task), params


@pytest.mark.parametrize('experiment, model_class, shape', [
    ('vit_mae_fashion_mnist', mae.MaskedAutoencoder, (8, 32, 32, 3)),
    ('hiera_mae_fashion_mnist', hiera_mae.HieraMaskedAutoencoder,
     (4, 64, 64, 3))])
def test_task_runs_a_train_and_a_validation_step(fake_fmnist_tfrecords,
                                                 experiment, model_class,
                                                 shape):
  task, params = task_for(fake_fmnist_tfrecords, experiment)
  assert isinstance(task, mae_task.MAETask)
  model = task.build_model()
  assert isinstance(model, model_class)
  images = next(iter(task.build_inputs(params.task.train_data)))
  assert images.shape == shape and images.dtype == tf.float32
  # The recipe's warm-up starts at lr 0, which would leave step 0 a no-op.
  params.override({'trainer': {'optimizer_config': {
      'warmup': {'linear': {'warmup_learning_rate': 1e-4}}}}})
  optimizer = task.create_optimizer(params.trainer.optimizer_config,
                                    params.runtime)
  before = [v.numpy() for v in model.trainable_variables]
  logs = task.train_step(images, model, optimizer)
  assert np.isfinite(float(logs['loss']))
  assert any(not np.array_equal(a, v.numpy())
             for a, v in zip(before, model.trainable_variables))
  images = next(iter(task.build_inputs(params.task.validation_data)))
  first = float(task.validation_step(images, model)['loss'])
  second = float(task.validation_step(images, model)['loss'])
  assert np.isfinite(first) and first == second  # Fixed validation mask.


def test_weight_decay_skips_exactly_the_1d_weights(fake_fmnist_tfrecords):
  """The reference decays weights with ndim > 1: not biases (here [H, d]
  in attention) nor LayerNorm gamma/beta; cls and mask tokens are 3-D."""
  task, params = task_for(fake_fmnist_tfrecords)
  model = task.build_model()
  optimizer = task.create_optimizer(params.trainer.optimizer_config)
  decays = optimizer._do_use_weight_decay  # pylint: disable=protected-access
  one_d_in_reference = ('/bias:0', '/gamma:0', '/beta:0')
  for var in model.trainable_variables:
    assert decays(var.name) != var.name.endswith(one_d_in_reference), var.name


def test_imagenet_schedule_is_the_reference_one():
  params = exp_factory.get_exp_config('vit_mae_imagenet')
  params.validate()
  opt = params.trainer.optimizer_config
  assert (opt.optimizer.adamw.beta_1, opt.optimizer.adamw.beta_2) == (0.9,
                                                                       0.95)
  schedule = optimization.OptimizerFactory(opt).build_learning_rate()
  steps, warmup = params.trainer.train_steps, 40 * 312
  assert steps == 800 * 312
  peak = 1.5e-4 * 4096 / 256
  for step, expected in ((0, 0.0), (warmup // 2, peak / 2), (warmup, peak),
                         ((warmup + steps) // 2, peak / 2), (steps, 0.0)):
    assert float(schedule(step)) == pytest.approx(expected, abs=1e-9), step


def test_checkpoint_items_initialise_an_encoder(fake_fmnist_tfrecords,
                                                tmp_path):
  task, _ = task_for(fake_fmnist_tfrecords)
  model = task.build_model()
  path = tf.train.Checkpoint(model=model, **model.checkpoint_items).write(
      str(tmp_path / 'ckpt'))
  # A classifier's backbone: the same encoder without masking.
  encoder = mae.MAEEncoder(64, 4, 4, 4, mask_ratio=0.0)
  encoder(tf.zeros([1, 32, 32, 3]))
  tf.train.Checkpoint(backbone=encoder).read(
      path).expect_partial().assert_existing_objects_matched()
  for mine, theirs in zip(encoder.weights, model.encoder.weights):
    np.testing.assert_array_equal(mine, theirs)
  # And the task's init_checkpoint loads it into a fresh MAE.
  task.task_config.init_checkpoint = path
  fresh = task.build_model()
  task.initialize(fresh)
  for mine, theirs in zip(fresh.encoder.weights, model.encoder.weights):
    np.testing.assert_array_equal(mine, theirs)


def test_bad_config_and_missing_data_are_named(fake_fmnist_tfrecords,
                                               tmp_path):
  task, _ = task_for(fake_fmnist_tfrecords, size='tiny', input_size=[30, 30, 3])
  with pytest.raises(ValueError, match=r'task.model.input_size=\[30, 30, 3\]'):
    task.build_model()
  task, _ = task_for(fake_fmnist_tfrecords, size='small')
  with pytest.raises(ValueError, match=r"task.model.size='small'"):
    task.build_model()
  task, params = task_for(str(tmp_path))
  with pytest.raises(FileNotFoundError,
                     match=r'task.train_data.input_path: no file matches'):
    task.build_inputs(params.task.train_data)
