"""RetinaNet + FPN with a MobileNetV4 backbone on composite detection data."""
import numpy as np
import pytest
import tensorflow as tf, tf_keras
from official.core import exp_factory
from official.core import task_factory
from official.vision.modeling import retinanet_model

from tests import conftest
from univision import registry_imports  # pylint: disable=unused-import
from univision.configs import retinanet as retinanet_cfg
from univision.modeling import patches
from univision.modeling.backbones import mobilenet_v4
from univision.modeling.layers import scored_nms_generator


def _task(folder):
  params = exp_factory.get_exp_config('mnv4_retinanet_composites')
  params.override({'task': {
      'model': {'input_size': [64, 64, 3], 'head': conftest.SMALL_HEAD},
      'train_data': {'input_path': f'{folder}/train-*',
                     'global_batch_size': 4},
      'validation_data': {'input_path': f'{folder}/val-*',
                          'global_batch_size': 4}}})
  return task_factory.get_task(params.task), params


def test_model_is_retinanet_on_mobilenet_v4_levels(composites):
  task, _ = _task(composites)
  model = task.build_model()
  assert isinstance(model, retinanet_model.RetinaNetModel)
  assert isinstance(model.backbone, mobilenet_v4.MobileNetV4)
  outputs = model(tf.zeros((1, 64, 64, 3)), training=True)
  # One class-score map per FPN level 3..5: 64/8, 64/16, 64/32.
  sizes = {level: out.shape[1] for level, out in outputs['cls_outputs'].items()}
  assert sizes == {'3': 8, '4': 4, '5': 2}


def test_train_and_eval_steps_give_coco_metrics(composites):
  task, params = _task(composites)
  model = task.build_model()
  optimizer = tf_keras.optimizers.SGD(0.001)
  metrics = task.build_metrics(training=True)
  train = iter(task.build_inputs(params.task.train_data))
  logs = task.train_step(next(train), model, optimizer, metrics=metrics)
  assert np.isfinite(float(logs['total_loss']))
  val_metrics = task.build_metrics(training=False)
  state = None
  for batch in task.build_inputs(params.task.validation_data).take(2):
    logs = task.validation_step(batch, model, metrics=val_metrics)
    state = task.aggregate_logs(state, logs)
  results = task.reduce_aggregated_logs(state)
  assert {'AP', 'AP50', 'AP75'} <= set(results)
  assert 0.0 <= float(results['AP50']) <= 1.0


def _patched(folder, **task_overrides):
  """A patched-RetinaNet task at 64x64, its built model and one batch.

  Seeded: which weights one SGD step moves depends on the random init.
  """
  tf_keras.utils.set_random_seed(0)
  params = exp_factory.get_exp_config('mnv4_retinanet_composites_patch')
  model = {'input_size': [64, 64, 3], 'head': conftest.SMALL_HEAD,
           **task_overrides.pop('model', {})}
  params.override({'task': {
      **task_overrides, 'model': model,
      'train_data': {'input_path': f'{folder}/train-*',
                     'global_batch_size': 4}}})
  task = task_factory.get_task(params.task)
  model = task.build_model()
  batch = next(iter(task.build_inputs(params.task.train_data)))
  model(batch[0], training=False)
  return task, model, batch


@pytest.mark.parametrize('patch', ['bias', 'bn+head', 'depthwise'])
def test_patch_training_changes_only_the_patch(composites, patch):
  assert isinstance(
      exp_factory.get_exp_config('mnv4_retinanet_composites_patch').task,
      retinanet_cfg.PatchedRetinaNetTask)
  task, model, batch = _patched(composites, patch=patch)
  assert isinstance(model.detection_generator,
                    scored_nms_generator.ScoredNmsDetectionGenerator)
  patch_ids = {id(v) for v in patches.select(model, patch)}
  before = {id(v): v.numpy() for v in model.weights}
  task.train_step(batch, model, tf_keras.optimizers.SGD(0.1),
                  metrics=task.build_metrics(training=True))
  changed = {id(v) for v in model.weights
             if not np.array_equal(v.numpy(), before[id(v)])}
  assert changed and changed <= patch_ids, sorted(
      v.name for v in model.weights if id(v) in changed - patch_ids)[:8]
  trained = {id(v) for v in patches.trainable(patches.select(model, patch))}
  # At random initialisation some of the separable head's depthwise kernels
  # get steps below float32's resolution; a third of the patch must move.
  assert len(changed & trained) >= len(trained) // 3


def test_base_plus_saved_patch_equals_the_patch_trained_detector(
    composites, tmp_path):
  task, model, batch = _patched(composites, patch='bn+predictor')
  base_path = tf.train.Checkpoint(**model.checkpoint_items).write(
      str(tmp_path / 'base'))
  for _ in range(2):
    task.train_step(batch, model, tf_keras.optimizers.SGD(0.1),
                    metrics=task.build_metrics(training=True))
  patch_path = patches.save(model, 'bn+predictor', str(tmp_path / 'p.npz'))
  want = model(batch[0], training=False)

  rebuilt = task.build_model()
  rebuilt(batch[0], training=False)
  tf.train.Checkpoint(**rebuilt.checkpoint_items).read(
      base_path).assert_existing_objects_matched()
  before = rebuilt(batch[0], training=False)
  assert not np.allclose(before['cls_outputs']['3'], want['cls_outputs']['3'])
  patches.load(rebuilt, patch_path)
  got = rebuilt(batch[0], training=False)
  for key in ('cls_outputs', 'box_outputs'):
    for level in want[key]:
      np.testing.assert_allclose(got[key][level], want[key][level],
                                 rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('statistics', ['frozen', 'batch'])
def test_bn_patch_statistics_frozen_or_batch(composites, statistics):
  task, model, batch = _patched(composites, patch='bn',
                                bn_statistics=statistics)
  short = lambda v: v.name.split('/')[-1].split(':')[0]
  before = {id(v): v.numpy() for v in model.weights}
  # A big step: at random initialisation some gamma gradients are so small
  # that 0.1 x gradient vanishes next to gamma = 1 in float32.
  task.train_step(batch, model, tf_keras.optimizers.SGD(100.0),
                  metrics=task.build_metrics(training=True))
  changed = {short(v) for v in patches.select(model, 'bn')
             if not np.array_equal(v.numpy(), before[id(v)])}
  want = {'gamma', 'beta'} | (
      {'moving_mean', 'moving_variance'} if statistics == 'batch' else set())
  assert changed == want


def test_unknown_bn_statistics_is_named(composites):
  params = exp_factory.get_exp_config('mnv4_retinanet_composites_patch')
  params.override({'task': {'bn_statistics': 'moving'}})
  with pytest.raises(ValueError, match="task.bn_statistics: 'moving'"):
    task_factory.get_task(params.task).build_model()


def test_hiera_is_a_detection_backbone(composites):
  """Hiera's levels 3-5 feed Model Garden's FPN and RetinaNet head."""
  task, params = _task(composites)
  params.override({'task': {'model': {'backbone': {
      'type': 'hiera', 'hiera': {'model_id': 'hiera_tiny',
                                 'include_head': False}}}}})
  task = task_factory.get_task(params.task)
  model = task.build_model()
  outputs = model(tf.zeros((1, 64, 64, 3)), training=True)
  sizes = {level: out.shape[1] for level, out in outputs['cls_outputs'].items()}
  assert sizes == {'3': 8, '4': 4, '5': 2}
  images, labels = next(iter(task.build_inputs(params.task.train_data)))
  logs = task.train_step((images, labels), model,
                         tf_keras.optimizers.SGD(0.001), task.build_metrics())
  assert np.isfinite(logs['total_loss'])


def _level3_gap(model, images) -> float:
  """Largest |inference - training-mode| class score at level 3."""
  inference = model(images, training=False)['cls_outputs']['3']
  training = model(images, training=True)['cls_outputs']['3']
  return float(tf.reduce_max(tf.abs(inference - training)))


def test_batch_statistics_patch_is_consistent_and_loads_anywhere(
    composites, tmp_path):
  # Momentum 0: a training-mode pass leaves each norm's moving statistics
  # at that batch's, so inference on the batch must then be the training
  # pass - moving statistics updated, and used, where the batch ones were
  # (the 'batch' mode once evaluated at a loss of 10.9 against 0.43 with
  # batch statistics; see PatchedRetinaNetTask).
  task, model, batch = _patched(
      composites, patch='bn+predictor', bn_statistics='batch',
      model={'norm_activation': {'norm_momentum': 0.0}})
  images = batch[0]
  gap_before = _level3_gap(model, images)
  task.train_step(batch, model, tf_keras.optimizers.SGD(0.01),
                  metrics=task.build_metrics(training=True))
  model(images, training=True)  # Statistics of the trained patch.
  assert gap_before > 0.01
  assert _level3_gap(model, images) < 1e-5

  # The patch file of a batch-statistics run (its norms trainable) loads
  # into a plain detector and into a frozen-statistics patch model alike.
  path = patches.save(model, 'bn+predictor', str(tmp_path / 'batch.npz'))
  want = model(images, training=False)['cls_outputs']['3']
  for experiment in ('mnv4_retinanet_composites',
                     'mnv4_retinanet_composites_patch'):
    params = exp_factory.get_exp_config(experiment)
    params.override({'task': {'model': {
        'input_size': [64, 64, 3], 'head': conftest.SMALL_HEAD,
        'norm_activation': {'norm_momentum': 0.0}}}})
    other = task_factory.get_task(params.task).build_model()
    other(images, training=False)
    tf.train.Checkpoint(**other.checkpoint_items).read(
        tf.train.Checkpoint(**model.checkpoint_items).write(
            str(tmp_path / experiment))).expect_partial()
    patches.load(other, path)
    np.testing.assert_allclose(other(images, training=False)['cls_outputs']['3'],
                               want, rtol=1e-5, atol=1e-6, err_msg=experiment)
