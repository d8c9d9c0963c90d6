"""MAWS checkpoint chaining: MAE -> ViT classifier -> ViT classifier."""
import numpy as np
import pytest
import tensorflow as tf
from official.core import exp_factory
from official.core import task_factory

from univision import registry_imports  # pylint: disable=unused-import
from univision.configs import mae as mae_cfg
from univision.modeling import mae
from univision.tasks import mae as mae_task


def _classifier_task(name: str, init_checkpoint: str = '', **model):
  params = exp_factory.get_exp_config(name)
  params.override({'task': {'init_checkpoint': init_checkpoint,
                            'model': model}})
  return task_factory.get_task(params.task)


def _save_like_the_trainer(model, prefix: str) -> str:
  """A checkpoint laid out as Model Garden's trainer saves it."""
  return tf.train.Checkpoint(model=model, **model.checkpoint_items).save(
      prefix)


@pytest.fixture(scope='module')
def mae_checkpoint(tmp_path_factory):
  model = mae_task.build_model(mae_cfg.MAEModel(
      size='tiny', input_size=[32, 32, 3], decoder_dim=32, decoder_depth=1,
      decoder_heads=4))
  path = _save_like_the_trainer(
      model, str(tmp_path_factory.mktemp('mae') / 'ckpt'))
  return path, [w.numpy() for w in model.encoder.weights]


def _assert_weights_equal(mine, theirs):
  assert len(mine) == len(theirs)
  for a, b in zip(mine, theirs):
    np.testing.assert_array_equal(a, b)


def test_mae_checkpoint_initialises_the_weak_stage_backbone(mae_checkpoint):
  path, encoder_weights = mae_checkpoint
  task = _classifier_task('vit_weak_fashion_mnist', path, num_classes=4)
  model = task.build_model()
  head = [w.numpy() for w in model.weights[len(encoder_weights):]]
  task.initialize(model)
  _assert_weights_equal(model.backbone.get_weights(), encoder_weights)
  # The head keeps its fresh initialisation.
  _assert_weights_equal(model.get_weights()[len(encoder_weights):], head)


def test_weak_checkpoint_initialises_the_finetuning_backbone(
    mae_checkpoint, tmp_path):
  weak = _classifier_task('vit_weak_fashion_mnist', mae_checkpoint[0],
                          num_classes=4)
  weak_model = weak.build_model()
  weak.initialize(weak_model)
  for var in weak_model.backbone.weights:  # As if trained further.
    var.assign(var + 0.5)
  _save_like_the_trainer(weak_model, str(tmp_path / 'ckpt'))
  # A folder is resolved to its latest checkpoint; the head has 10 classes.
  finetune = _classifier_task('vit_fashion_mnist', str(tmp_path))
  model = finetune.build_model()
  finetune.initialize(model)
  _assert_weights_equal(model.backbone.get_weights(),
                        weak_model.backbone.get_weights())
  assert model.output_shape == (None, 10)


def test_a_checkpoint_of_another_size_is_named(tmp_path):
  for name, encoder in (('narrow', mae.MAEEncoder(32, 4, 4, 4)),
                        ('shallow', mae.MAEEncoder(64, 2, 4, 4))):
    encoder(tf.zeros([1, 32, 32, 3]))
    path = tf.train.Checkpoint(backbone=encoder).write(
        str(tmp_path / name / 'ckpt-1'))
    task = _classifier_task('vit_fashion_mnist', path)
    model = task.build_model()
    with pytest.raises(ValueError, match=(
        rf'task.init_checkpoint=.*{name}/ckpt-1 does not fit task.model '
        r"\(init_checkpoint_modules='backbone', backbone vit_mae "
        r"\{'size': 'tiny'")):
      task.initialize(model)


def test_missing_checkpoint_and_bad_modules_are_named(tmp_path):
  task = _classifier_task('vit_fashion_mnist', str(tmp_path))
  model = task.build_model()
  with pytest.raises(FileNotFoundError, match=(
      r'task.init_checkpoint=.*: no checkpoint in this folder')):
    task.initialize(model)
  path = tf.train.Checkpoint(backbone=model.backbone).write(
      str(tmp_path / 'ckpt-1'))
  task = _classifier_task('vit_fashion_mnist', path)
  task.task_config.init_checkpoint_modules = 'head'
  with pytest.raises(ValueError, match=(
      r"task.init_checkpoint_modules='head' must be 'all' or 'backbone'")):
    task.initialize(model)
