"""WSOL task: trains on level labels, validates with localization metrics."""
import numpy as np
import pytest
import tensorflow as tf, tf_keras
from official.core import exp_factory
from official.core import task_factory

from tests import conftest
from univision import registry_imports  # pylint: disable=unused-import
from univision.data import wsol_composites
from univision.data import wsol_parts


@pytest.fixture(scope='module')
def wsol_data(tmp_path_factory):
  folder = tmp_path_factory.mktemp('wsol')
  source = conftest.make_fake_fashion_mnist(str(folder / 'src'), num_test=96)
  wsol_composites.build(str(folder / 'data'), num_train=16, num_eval=8,
                        image_size=64, object_size=(20, 40), source_dir=source)
  return str(folder / 'data')


def _params(data, **task):
  params = exp_factory.get_exp_config('mnv4_wsol_composites')
  model = {'input_size': [64, 64, 3], **task.pop('model', {})}
  params.override({'task': {
      'init_checkpoint': '', 'model': model,
      'train_data': {'input_path': f'{data}/train-*', 'global_batch_size': 4},
      'validation_data': {'input_path': f'{data}/val-*',
                          'global_batch_size': 4},
      'evaluation': {'num_thresholds': 20}, **task}})
  return params


@pytest.mark.parametrize('method,level,classes', [
    ('cam', 'fine', 10), ('has', 'coarse', 4), ('adl', 'coarse', 4),
    ('cutmix', 'coarse', 4)])
def test_train_and_validate_each_method(wsol_data, method, level, classes):
  params = _params(wsol_data, method=method, label_level=level,
                   model={'num_classes': classes})
  task = task_factory.get_task(params.task)
  model = task.build_model()
  optimizer = tf_keras.optimizers.SGD(0.01)
  images, labels = next(iter(task.build_inputs(params.task.train_data)))
  if method == 'cutmix':  # Soft labels over the level's classes.
    assert labels.shape == (4, classes)
    np.testing.assert_allclose(tf.reduce_sum(labels, -1), 1.0, rtol=1e-6)
  else:
    assert int(tf.reduce_max(labels)) < classes
  logs = task.train_step((images, labels), model, optimizer,
                         task.build_metrics())
  assert np.isfinite(logs['loss'])
  state = None
  metrics = task.build_metrics(training=False)
  for batch in task.build_inputs(params.task.validation_data):
    outputs = task.validation_step(batch, model, metrics)
    state = task.aggregate_logs(state, outputs)
  result = task.reduce_aggregated_logs(state)
  assert result['images'] == 8
  for key in ('MaxBoxAccV2', 'MaxBoxAccV2/IoU50', 'MaxBoxAccV1',
              'GT-known Loc', 'Top-1 Loc', 'PxAP'):
    assert 0.0 <= result[key] <= 100.0, key


def test_replica_outputs_are_concatenated(wsol_data):
  task = task_factory.get_task(_params(wsol_data).task)
  model = task.build_model()
  batch = next(iter(task.build_inputs(task.task_config.validation_data)))
  outputs = task.validation_step(batch, model)
  split = {k: (v[:2], v[2:]) if k != 'loss' else v
           for k, v in outputs.items()}
  assert task.reduce_aggregated_logs(task.aggregate_logs(None, split)) == (
      task.reduce_aggregated_logs(task.aggregate_logs(None, outputs)))


def test_reference_protocol_resizes_raw_cams_on_the_host(wsol_data):
  params = _params(wsol_data, evaluation={'num_thresholds': 20,
                                          'protocol': 'wsolevaluation'})
  task = task_factory.get_task(params.task)
  model = task.build_model()
  state = None
  for batch in task.build_inputs(params.task.validation_data):
    outputs = task.validation_step(batch, model)
    # Raw CAMs at the feature map's size: the host resizes them (bicubic).
    assert outputs['cams'].shape[1] < 64
    state = task.aggregate_logs(state, outputs)
  assert len(state.boxes.thresholds) == 20
  result = task.reduce_aggregated_logs(state)
  assert result['images'] == 8
  for key in ('MaxBoxAccV2', 'MaxBoxAccV1', 'GT-known Loc', 'PxAP'):
    assert 0.0 <= result[key] <= 100.0, key
  params.override({'task': {'evaluation': {'protocol': 'wsolevalution'}}})
  task = task_factory.get_task(params.task)
  with pytest.raises(ValueError, match='task.evaluation.protocol'):
    task.aggregate_logs(None, outputs)


def test_part_data_reports_the_cam_mass_on_the_marker(tmp_path):
  source = conftest.make_fake_fashion_mnist(str(tmp_path / 'src'),
                                            num_test=96)
  data = str(tmp_path / 'parts')
  wsol_parts.build(data, num_train=4, num_eval=4, image_size=64,
                   object_size=(24, 48), source_dir=source)
  params = exp_factory.get_exp_config('mnv4_wsol_parts')
  params.override({'task': {
      'model': {'input_size': [64, 64, 3]},
      'train_data': {'input_path': f'{data}/train-*', 'global_batch_size': 4},
      'validation_data': {'input_path': f'{data}/val-*',
                          'global_batch_size': 4},
      'evaluation': {'num_thresholds': 20}}})
  task = task_factory.get_task(params.task)
  model = task.build_model()
  assert model.classifier.units == 30  # The marked level's classes.
  state = None
  for batch in task.build_inputs(params.task.validation_data):
    outputs = task.validation_step(batch, model)
    # Stride 8 from level 3: 8x8 maps at 64 px, resized to the input.
    assert model.cams(batch[0], batch[1]['label']).shape[1:] == (8, 8)
    state = task.aggregate_logs(state, outputs)
  result = task.reduce_aggregated_logs(state)
  assert 0.0 < result['part_area'] < 10.0
  assert 0.0 <= result['part_cam_mass'] <= 100.0


def test_zero_classes_means_the_levels_count(wsol_data):
  params = _params(wsol_data, label_level='coarse', model={'num_classes': 0})
  model = task_factory.get_task(params.task).build_model()
  assert model(tf.zeros([1, 64, 64, 3])).shape == (1, 4)


def test_bad_settings_are_named(wsol_data):
  with pytest.raises(ValueError, match=r"num_classes=10, but level 'coarse'.*"
                     r'hierarchy.json has 4 classes'):
    task_factory.get_task(_params(wsol_data, label_level='coarse').task
                          ).build_model()
  with pytest.raises(ValueError, match="task.method='grad'"):
    task_factory.get_task(_params(wsol_data, method='grad').task).build_model()
  with pytest.raises(FileNotFoundError, match='task.train_data.input_path'):
    params = _params(wsol_data)
    params.override({'task': {'train_data': {'input_path': '/nope/x-*'},
                              'hierarchy_path': f'{wsol_data}/hierarchy.json'}})
    task_factory.get_task(params.task).build_inputs(params.task.train_data)


def test_backbone_initializes_from_a_checkpoint(wsol_data, tmp_path):
  task = task_factory.get_task(_params(wsol_data).task)
  source = task.build_model()
  source(tf.zeros([1, 64, 64, 3]))
  path = tf.train.Checkpoint(backbone=source.backbone).save(
      str(tmp_path / 'b' / 'ckpt'))
  params = _params(wsol_data, init_checkpoint=path)
  task = task_factory.get_task(params.task)
  model = task.build_model()
  model(tf.zeros([1, 64, 64, 3]))
  task.initialize(model)
  for a, b in zip(model.backbone.weights, source.backbone.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_resnet50_reference_trains_and_gives_stride_16_cams(wsol_data):
  params = exp_factory.get_exp_config('resnet50_wsol_composites')
  params.override({'task': {
      'model': {'input_size': [64, 64, 3]},
      'train_data': {'input_path': f'{wsol_data}/train-*',
                     'global_batch_size': 2}}})
  task = task_factory.get_task(params.task)
  model = task.build_model()
  assert model.backbone.name.startswith('res_net')
  images, labels = next(iter(task.build_inputs(params.task.train_data)))
  logs = task.train_step((images, labels), model,
                         tf_keras.optimizers.SGD(0.01), task.build_metrics())
  assert np.isfinite(logs['loss'])
  assert model.cams(images, labels).shape == (2, 4, 4)
