"""A learned SpotPatch as a user trains and exports it: train.py, export.py."""
import os

import numpy as np
import tensorflow as tf, tf_keras
from official.core import exp_factory
from official.core import task_factory
from official.vision.ops import preprocess_ops

from tests import conftest
from tests import test_train
from univision import registry_imports  # pylint: disable=unused-import
from univision.core import config_parsing
from univision.modeling import patches
from univision.tasks import patch_outputs

SPOT_YAML = os.path.join(conftest.REPO, 'univision', 'configs', 'experiments',
                         'retinanet', 'composites_mnv4_spot_patch_cpu.yaml')


def _overrides(composites: str, base: str) -> str:
  # Score threshold 0: an untrained detector's scores (~0.01) still show.
  return ','.join([
      f"task.init_checkpoint='{base}'",
      f"task.train_data.input_path='{composites}/train-*'",
      f"task.validation_data.input_path='{composites}/val-*'",
      'task.model.input_size=[64,64,3]', conftest.SMALL_HEAD_OVERRIDE,
      'task.model.detection_generator.pre_nms_score_threshold=0.0',
      'task.train_data.global_batch_size=4',
      'task.validation_data.global_batch_size=4',
      # Gates that start sure of their copy stay on for 3 steps at a high
      # learning rate: the patch holds kernels, and they have moved.
      'task.gates.initial_logit=3.0', 'task.gates.temperature_steps=3',
      'trainer.train_steps=3', 'trainer.steps_per_loop=3',
      'trainer.summary_interval=3', 'trainer.checkpoint_interval=3',
      'trainer.validation_interval=3', 'trainer.validation_steps=1',
      'trainer.optimizer_config.learning_rate.cosine.decay_steps=3',
      'trainer.optimizer_config.learning_rate.cosine.initial_learning_rate=0.05',
      'trainer.optimizer_config.warmup.linear.warmup_steps=1'])


def test_train_writes_the_patch_and_export_serves_base_plus_patch(
    composites, tmp_path):
  # The shared base: a plain detector's checkpoint.
  plain = exp_factory.get_exp_config('mnv4_retinanet_composites')
  plain.override({'task': {'model': {
      'input_size': [64, 64, 3], 'head': conftest.SMALL_HEAD,
      'detection_generator': {'pre_nms_score_threshold': 0.0}}}})
  tf_keras.utils.set_random_seed(0)
  base_model = task_factory.get_task(plain.task).build_model()
  base_model(tf.zeros([1, 64, 64, 3]), training=False)
  base = tf.train.Checkpoint(**base_model.checkpoint_items).write(
      str(tmp_path / 'base'))

  overrides = _overrides(composites, base)
  run_dir = str(tmp_path / 'run')
  trained = test_train._run(  # pylint: disable=protected-access
      'train.py', '--experiment=mnv4_retinanet_composites_spot',
      '--mode=train', f'--config_file={SPOT_YAML}',
      f'--model_dir={run_dir}', f'--params_override={overrides}')
  patch_path = patch_outputs.default_path(run_dir)
  assert f'Patch:            {patch_path} (' in trained.stdout
  assert f'--patch={patch_path}' in trained.stdout

  # The run's hardened detector ...
  params = config_parsing.parse_experiment(
      'mnv4_retinanet_composites_spot', [SPOT_YAML], overrides)
  model = patch_outputs.restore_run(params, run_dir)
  gated_on = model.spot_patch.harden()
  assert gated_on  # The patch holds learned kernels ...
  kernels = model.spot_patch.patch_kernels()
  shared = patches._kernel_slots(model)  # pylint: disable=protected-access
  assert any(not np.array_equal(kernel, shared[i])
             for i, kernel in kernels.items())  # ... that moved.

  # ... equals base + patch file in a plain detector, to the bit.
  patches.load(base_model, patch_path)
  images = tf.random.stateless_uniform([2, 64, 64, 3], seed=[5, 6]) * 255
  want = model(images, training=False)
  got = base_model(images, training=False)
  for key in ('detection_boxes', 'detection_scores', 'detection_classes'):
    np.testing.assert_array_equal(got[key], want[key], err_msg=key)

  # export.py with the run's own experiment: base + patch in one
  # SavedModel, and the patch file alone next to it.
  export_dir = str(tmp_path / 'export')
  exported = test_train._run(  # pylint: disable=protected-access
      'export.py', '--experiment=mnv4_retinanet_composites_spot',
      f'--config_file={SPOT_YAML}', f'--params_override={overrides}',
      f'--checkpoint_path={run_dir}', f'--patch={patch_path}',
      f'--export_dir={export_dir}', '--batch_size=1')
  assert f'{export_dir}/patch.npz' in exported.stdout
  with open(patch_path, 'rb') as a, open(f'{export_dir}/patch.npz', 'rb') as b:
    assert a.read() == b.read()
  serve = tf.saved_model.load(f'{export_dir}/saved_model').signatures[
      'serving_default']
  image = tf.cast(images[:1], tf.uint8)
  served = serve(inputs=image)
  # The SavedModel normalizes its input as Model Garden's parser does.
  normalized = preprocess_ops.normalize_image(
      tf.cast(image[0], tf.float32), offset=preprocess_ops.MEAN_RGB,
      scale=preprocess_ops.STDDEV_RGB)
  want = model(normalized[None], training=False)
  # The SavedModel resizes its input (by 1): scores of this untrained
  # detector differ by ~1e-4, enough to change the last of the top 100.
  np.testing.assert_allclose(np.sort(served['detection_scores'])[:, -10:],
                             np.sort(want['detection_scores'])[:, -10:],
                             atol=1e-3)
