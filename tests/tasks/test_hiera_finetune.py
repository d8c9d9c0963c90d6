"""Hiera fine-tuning recipes: a Hiera MAE checkpoint initialises the classifier."""
import numpy as np
import pytest
import tensorflow as tf
from official.core import exp_factory
from official.core import task_factory

from univision import registry_imports  # pylint: disable=unused-import
from univision.configs import mae as mae_cfg
from univision.tasks import mae as mae_task


def _hiera_mae_checkpoint(prefix: str):
  """A Hiera-T MAE at 64 px, saved as Model Garden's trainer saves it."""
  model = mae_task.build_model(mae_cfg.MAEModel(
      type='hiera', size='tiny', input_size=[64, 64, 3], mask_ratio=0.6,
      decoder_dim=32, decoder_depth=1, decoder_heads=4))
  path = tf.train.Checkpoint(model=model, **model.checkpoint_items).save(
      prefix)
  return path, model.encoder


def test_fashion_mnist_recipe_loads_the_mae_encoder_and_trains(
    tmp_path, fake_fmnist_tfrecords):
  path, encoder = _hiera_mae_checkpoint(str(tmp_path / 'mae' / 'ckpt'))
  params = exp_factory.get_exp_config('hiera_fashion_mnist')
  params.override({'task': {
      'init_checkpoint': path,
      'model': {'input_size': [64, 64, 3]},
      'train_data': {'input_path': f'{fake_fmnist_tfrecords}/train-*',
                     'global_batch_size': 4}}})
  params.validate()
  task = task_factory.get_task(params.task)
  model = task.build_model()
  assert model.backbone.get_config()['q_pool'] == 3  # MAE encoder: 2.
  head = [w.numpy() for w in model.backbone.get_layer('head_norm').weights]
  task.initialize(model)
  by_name = {w.name: w.numpy() for w in encoder.weights}
  mine = {w.name: w.numpy() for w in model.backbone.weights}
  assert set(mine) - set(by_name) == {'head_norm/gamma:0', 'head_norm/beta:0'}
  for name, value in by_name.items():
    np.testing.assert_array_equal(mine[name], value, err_msg=name)
  # The head norm (not in the MAE) keeps its fresh initialisation.
  for fresh, now in zip(head, model.backbone.get_layer('head_norm').weights):
    np.testing.assert_array_equal(fresh, now)
  images, labels = next(iter(task.build_inputs(params.task.train_data)))
  optimizer = task.create_optimizer(params.trainer.optimizer_config,
                                    params.runtime)
  logs = task.train_step((images, labels), model, optimizer)
  assert np.isfinite(float(logs['loss']))


def test_imagenet_recipe_is_mae_vit_b_finetuning_on_hiera_base():
  params = exp_factory.get_exp_config('hiera_imagenet')
  params.validate()
  assert params.task.model.backbone.hiera.model_id == 'hiera_base'
  assert params.task.model.backbone.hiera.q_pool == 3
  assert params.task.init_checkpoint_modules == 'backbone'
  data = params.task.train_data
  assert data.global_batch_size == 1024
  assert data.mixup_and_cutmix.mixup_alpha == 0.8
  assert data.aug_type.randaug.magnitude == 9
  steps_per_epoch = mae_cfg.IMAGENET_TRAIN_EXAMPLES // 1024
  assert params.trainer.train_steps == 100 * steps_per_epoch
  optimizer = params.trainer.optimizer_config
  assert optimizer.learning_rate.cosine.initial_learning_rate == 2e-3
  assert optimizer.warmup.linear.warmup_steps == 5 * steps_per_epoch
  assert optimizer.optimizer.adamw.weight_decay_rate == 0.05


def test_a_checkpoint_of_another_hiera_size_is_named(tmp_path):
  model = mae_task.build_model(mae_cfg.MAEModel(
      type='hiera', size='small', input_size=[64, 64, 3], decoder_dim=32,
      decoder_depth=1, decoder_heads=4))
  path = tf.train.Checkpoint(model=model, **model.checkpoint_items).save(
      str(tmp_path / 'ckpt'))
  params = exp_factory.get_exp_config('hiera_fashion_mnist')
  params.override({'task': {'init_checkpoint': path,
                            'model': {'input_size': [64, 64, 3]}}})
  task = task_factory.get_task(params.task)
  with pytest.raises(ValueError, match=r'task.init_checkpoint=.*ckpt-1 does '
                     r"not fit task.model.*'model_id': 'hiera_tiny'"):
    task.initialize(task.build_model())
