"""Tests for the MAE task with the Hiera model: recipe, checkpoints.

The train and validation steps are tested with the ViT ones in test_mae.
"""
import json
import os

import numpy as np
import pytest
import tensorflow as tf, tf_keras
from official.core import exp_factory

from tests.tasks import test_mae
from univision.core import config_parsing
from univision.modeling.backbones import hiera
from univision.tasks import mae as mae_task


def _task(tfrecords_dir, **model_overrides):
  return test_mae.task_for(tfrecords_dir, 'hiera_mae_fashion_mnist',
                           **model_overrides)


def test_weight_decay_skips_exactly_the_1d_weights(fake_fmnist_tfrecords):
  task, params = _task(fake_fmnist_tfrecords)
  model = task.build_model()
  optimizer = task.create_optimizer(params.trainer.optimizer_config)
  decays = optimizer._do_use_weight_decay  # pylint: disable=protected-access
  for var in model.trainable_variables:
    assert decays(var.name) == (len(var.shape) > 1), var.name


def test_imagenet_recipe_is_hiera_base_at_ratio_0_6():
  params = exp_factory.get_exp_config('hiera_mae_imagenet')
  params.validate()
  model = params.task.model
  assert (model.type, model.size, model.mask_ratio) == ('hiera', 'base', 0.6)
  assert list(model.input_size) == [224, 224, 3]
  assert (model.decoder_dim, model.decoder_depth, model.decoder_heads) == (
      512, 8, 16)
  assert params.task.norm_pix_loss
  assert params.task.train_data.global_batch_size == 4096
  assert params.trainer.train_steps == 1600 * 312
  lr = params.trainer.optimizer_config.learning_rate.cosine
  assert lr.initial_learning_rate == 8e-4
  assert lr.offset == 40 * 312
  assert lr.decay_steps + lr.offset == params.trainer.train_steps
  assert mae_task.target_patches(model) == (16, True)


def test_checkpoint_items_initialise_a_hiera_classifier_backbone(
    fake_fmnist_tfrecords, tmp_path):
  task, _ = _task(fake_fmnist_tfrecords)
  model = task.build_model()
  path = tf.train.Checkpoint(**model.checkpoint_items).write(
      str(tmp_path / 'ckpt'))
  # Classification Hiera: q_pool 3 and a head; the weights are the same.
  backbone = hiera.Hiera('hiera_tiny', input_specs=tf_keras.layers.InputSpec(
      shape=[None, 64, 64, 3]))
  tf.train.Checkpoint(backbone=backbone).read(path).expect_partial()
  for mine, theirs in zip(backbone.get_layer('block05').weights,
                          model.encoder.get_layer('block05').weights):
    np.testing.assert_array_equal(mine, theirs)
  mine = backbone.get_layer('patch_embed').pos_embed
  np.testing.assert_array_equal(
      mine, model.encoder.get_layer('patch_embed').pos_embed)


@pytest.mark.parametrize('overrides,message', [
    ({'type': 'swin'}, r"task.model.type='swin' is unknown"),
    ({'size': 'giant'}, r"task.model.size='giant' is not a Hiera size"),
    ({'input_size': [100, 100, 3]},
     r'task.model.input_size=\[100, 100, 3\]: .*multiples of 32'),
    ({'mask_ratio': 0.5}, r'task.model.mask_ratio=0.5 keeps none of the 1'),
])
def test_bad_model_config_names_the_key(fake_fmnist_tfrecords, overrides,
                                        message):
  if 'mask_ratio' in overrides:
    overrides['input_size'] = [32, 32, 3]
  task, _ = _task(fake_fmnist_tfrecords, **overrides)
  with pytest.raises(ValueError, match=message):
    task.build_model()


@pytest.mark.parametrize('name', ['imagenet_hiera_base_mae_tpu.yaml',
                                  'fashion_mnist_hiera_tiny_mae_cpu.yaml'])
def test_yamls_restate_their_registered_experiment(name):
  path = os.path.join(os.path.dirname(mae_task.__file__), '..', 'configs',
                      'experiments', 'mae', name)
  with open(path) as f:
    experiment = f.readline().strip().split('=', 1)[1]
  params = config_parsing.parse_experiment(experiment, [path])
  default = exp_factory.get_exp_config(experiment)
  default.override({'runtime': {'tpu': params.runtime.tpu}, 'task': {
      'train_data': {'input_path': params.task.train_data.input_path},
      'validation_data': {
          'input_path': params.task.validation_data.input_path}}})
  # Through JSON, so that a YAML list equals the factory's tuple.
  assert json.loads(json.dumps(params.as_dict())) == json.loads(
      json.dumps(default.as_dict()))
