"""Joint standard + query-modulated training on composite detection data."""
import numpy as np
import pytest
import tensorflow as tf, tf_keras
from official.core import exp_factory
from official.core import task_factory

from univision import registry_imports  # pylint: disable=unused-import
from univision.configs import query_retinanet as query_cfg


def _task(folder, **query):
  params = exp_factory.get_exp_config('mnv4_query_ssdlite_composites')
  assert isinstance(params.task, query_cfg.QueryRetinaNetTask)
  params.override({'task': {
      'query': query,
      'model': {'input_size': [64, 64, 3]},
      'train_data': {'input_path': f'{folder}/train-*',
                     'global_batch_size': 4},
      'validation_data': {'input_path': f'{folder}/val-*',
                          'global_batch_size': 4}}})
  return task_factory.get_task(params.task), params


def _modulated(task, params):
  """The task's model, built on a training batch, with a random non-zero
  modulation (a zero-initialised one passes the embedding no gradient),
  and that batch."""
  model = task.build_model()
  batch = next(iter(task.build_inputs(params.task.train_data)))
  model(batch[0], query_ids=batch[1]['query'], training=False)
  rng = np.random.default_rng(0)
  for v in model.modulation.trainable_variables:
    v.assign(rng.normal(0.0, 0.1, v.shape).astype(np.float32))
  return model, batch


def test_joint_step_trains_the_shared_detector_and_the_modulation(
    composites):
  task, params = _task(composites)
  model = task.build_model()
  batch = next(iter(task.build_inputs(params.task.train_data)))
  assert batch[1]['query'].shape == (4,)
  model(batch[0], query_ids=batch[1]['query'], training=False)
  before = {id(v): v.numpy() for v in model.trainable_variables}
  changed = lambda layer: any(
      not np.array_equal(v.numpy(), before[id(v)])
      for v in layer.trainable_variables)
  optimizer = tf_keras.optimizers.SGD(0.01)
  logs = task.train_step(batch, model, optimizer,
                         metrics=task.build_metrics(training=True))
  assert np.isfinite(float(logs['total_loss']))
  assert float(logs['query_loss']) > 0
  for layer in (model.modulation, model.head, model.backbone):
    assert changed(layer), layer.name
  # The modulations start at zero, so the embeddings get gradients from
  # step 2 on.
  assert not changed(model.query_embedding)
  # A large step, so that the tiny first-step modulation moves it visibly.
  task.train_step(batch, model, tf_keras.optimizers.SGD(1.0),
                  metrics=task.build_metrics(training=True))
  assert changed(model.query_embedding)


@pytest.mark.parametrize('referring', [False, True])
def test_query_loss_reads_only_the_queried_class(composites, referring):
  # With referring_probability 1, every present-class query is "the
  # largest c" or "the leftmost c": its loss reads class c's column.
  task, params = _task(composites, **(
      {'referring_rules': ['largest', 'leftmost'],
       'referring_probability': 1.0, 'absent_probability': 0.0}
      if referring else {}))
  model = task.build_model()
  images, labels = next(iter(task.build_inputs(params.task.train_data)))
  outputs = model(images, query_ids=labels['query'], training=True)
  num_classes = params.task.model.num_classes
  query = model.query_class(labels['query']).numpy()
  assert (labels['query'].numpy() >= num_classes).all() == referring

  def shifted(columns):
    """query_cls_outputs + 1 in each image's given class column."""
    out = dict(outputs)
    out['query_cls_outputs'] = {}
    for level, s in outputs['query_cls_outputs'].items():
      mask = np.zeros(s.shape[-1], np.float32).reshape(-1, num_classes)
      shift = np.stack([mask + np.eye(num_classes)[c] for c in columns])
      out['query_cls_outputs'][level] = s + shift.reshape(
          len(columns), 1, 1, -1)
    return out

  loss = lambda out: float(task.query_losses(out, labels)[0])
  others = [(q % (num_classes - 1)) + 1 for q in query]
  assert loss(shifted(others)) == pytest.approx(loss(outputs), rel=1e-6)
  assert loss(shifted(query)) != pytest.approx(loss(outputs), rel=1e-3)


def test_query_weight_zero_trains_the_standard_detector_alone(composites):
  task, params = _task(composites, query_weight=0.0)
  model = task.build_model()
  batch = next(iter(task.build_inputs(params.task.train_data)))
  model(batch[0], query_ids=batch[1]['query'], training=False)
  before = [v.numpy() for v in model.modulation.trainable_variables]
  calls = []
  call = model.call
  model.call = lambda *a, **k: calls.append(k.get('query_ids')) or call(
      *a, **k)
  logs = task.train_step(batch, model, tf_keras.optimizers.SGD(0.01),
                         metrics=task.build_metrics(training=True))
  assert calls == [None] and float(logs['query_loss']) == 0.0
  for v, b in zip(model.modulation.trainable_variables, before):
    np.testing.assert_array_equal(v.numpy(), b)


def test_a_one_class_query_detector_skips_the_standard_pass(composites):
  # standard_weight 0 and one query class: the query pass alone, always
  # asked for class 2 (normalised with its batch's statistics: no pass
  # would update the moving ones).
  task, params = _task(composites, standard_weight=0.0, train_classes=[2],
                       query_batch_norm='batch')
  model = task.build_model()
  batch = next(iter(task.build_inputs(params.task.train_data)))
  np.testing.assert_array_equal(batch[1]['query'].numpy(), [2] * 4)
  calls = []
  call = model.call
  model.call = lambda *a, **k: calls.append(k.get('standard_pass')) or call(
      *a, **k)
  logs = task.train_step(batch, model, tf_keras.optimizers.SGD(0.01),
                         metrics=task.build_metrics(training=True))
  assert calls == [False]
  assert float(logs['cls_loss']) == 0.0
  assert float(logs['total_loss']) == float(logs['query_loss']) > 0
  task.task_config.query.query_batch_norm = 'moving'
  with pytest.raises(ValueError, match="query_batch_norm: 'moving' with "
                     'standard_weight 0'):
    task.train_step(batch, model, tf_keras.optimizers.SGD(0.01))


def test_train_only_modulation_freezes_every_other_weight(composites):
  task, params = _task(composites, standard_weight=0.0, train_classes=[2],
                       train_only_modulation=True)
  # From a non-zero modulation the embedding must move within one step.
  model, batch = _modulated(task, params)
  before = {id(v): v.numpy() for v in model.trainable_variables}
  changed = lambda layer: [v.name for v in layer.trainable_variables
                           if not np.array_equal(v.numpy(), before[id(v)])]
  optimizer = tf_keras.optimizers.SGD(1.0)
  task.train_step(batch, model, optimizer,
                  metrics=task.build_metrics(training=True))
  for layer in (model.backbone, model.decoder, model.head):
    # The backbone's own weights; its modulation sites are not its own.
    assert not [n for n in changed(layer) if 'film' not in n], layer.name
  assert changed(model.modulation) and changed(model.query_embedding)
  task, _ = _task(composites, query_weight=0.0, train_only_modulation=True)
  with pytest.raises(ValueError, match='query_weight is 0'):
    task.train_step(batch, model, optimizer)


def test_referring_gradient_query_only_leaves_the_detector_alone(
    composites):
  # Every query refers ("the largest c", "the leftmost c"), no standard
  # loss: with query_only the step moves the query's own weights alone.
  referring = {'standard_weight': 0.0, 'absent_probability': 0.0,
               'referring_rules': ['largest', 'leftmost'],
               'referring_probability': 1.0, 'query_batch_norm': 'batch'}
  task, params = _task(composites, referring_gradient='query_only',
                       **referring)
  model, (images, labels) = _modulated(task, params)
  assert (labels['query'].numpy() >= params.task.model.num_classes).all()
  # The losses of complementary sets of examples add up to the batch's.
  outputs = model(images, query_ids=labels['query'], training=True)
  some = tf.constant([1.0, 0.0, 1.0, 0.0])
  whole = task.query_losses(outputs, labels)
  parts = (task.query_losses(outputs, labels, some),
           task.query_losses(outputs, labels, 1.0 - some))
  for i in range(2):
    assert float(parts[0][i]) > 0 and float(parts[1][i]) > 0
    assert float(parts[0][i] + parts[1][i]) == pytest.approx(
        float(whole[i]), rel=1e-5)
  before = {id(v): v.numpy() for v in model.trainable_variables}
  changed = lambda layer: [v.name for v in layer.trainable_variables
                           if not np.array_equal(v.numpy(), before[id(v)])]
  logs = task.train_step((images, labels), model, tf_keras.optimizers.SGD(
      1.0), metrics=task.build_metrics(training=True))
  assert float(logs['query_loss']) > 0
  for layer in (model.backbone, model.decoder, model.head):
    assert not [n for n in changed(layer) if 'film' not in n], layer.name
  assert changed(model.modulation) and changed(model.query_embedding)
  # With 'all' the same step trains the shared head too.
  task.task_config.query.referring_gradient = 'all'
  task.train_step((images, labels), model, tf_keras.optimizers.SGD(1.0))
  assert changed(model.head)
  task.task_config.query.referring_gradient = 'shared'
  with pytest.raises(ValueError, match='referring_gradient'):
    task.train_step((images, labels), model, tf_keras.optimizers.SGD(1.0))


def test_query_gradient_query_only_trains_the_detector_on_the_standard_loss(
    composites):
  # Class queries whose loss reaches only the query's own weights: the
  # shared detector takes the standard pass's step alone, exactly the step
  # of a run without a query pass.
  task, params = _task(composites, query_gradient='query_only')
  model, batch = _modulated(task, params)
  own = {id(v) for v in (model.modulation.trainable_variables +
                         model.query_embedding.trainable_variables)}
  shared = [v for v in model.trainable_variables if id(v) not in own]
  start = [v.numpy() for v in model.variables]

  def step(**query):
    for v, value in zip(model.variables, start):
      v.assign(value)
    for key, value in query.items():
      setattr(task.task_config.query, key, value)
    logs = task.train_step(batch, model, tf_keras.optimizers.SGD(0.1),
                           metrics=task.build_metrics(training=True))
    return logs, [v.numpy() for v in shared], [v.numpy() for v in
                                                model.variables]

  logs, query_only, after = step()
  assert float(logs['query_loss']) > 0
  assert any(not np.array_equal(a, b) for a, b, v in zip(
      after, start, model.variables) if id(v) in own)
  _, standard_alone, _ = step(query_weight=0.0)
  _, joint, _ = step(query_weight=1.0, query_gradient='all')
  for a, b in zip(query_only, standard_alone):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  assert any(not np.allclose(a, b, rtol=1e-6, atol=1e-7)
             for a, b in zip(joint, standard_alone))
  task.task_config.query.query_gradient = 'shared'
  with pytest.raises(ValueError, match='task.query.query_gradient'):
    task.train_step(batch, model, tf_keras.optimizers.SGD(0.1))


def test_evaluation_is_model_gardens_on_the_standard_head(composites):
  task, params = _task(composites)
  model = task.build_model()
  metrics = task.build_metrics(training=False)
  state = None
  for batch in task.build_inputs(params.task.validation_data).take(2):
    logs = task.validation_step(batch, model, metrics=metrics)
    state = task.aggregate_logs(state, logs)
  results = task.reduce_aggregated_logs(state)
  assert {'AP', 'AP50'} <= set(results)


def test_init_all_starts_from_a_checkpoint_with_fewer_query_sites(
    composites, tmp_path):
  # A query detector modulating level 5 only, its modulations non-zero.
  task, _ = _task(composites, backbone_levels=[5])
  source = task.build_model()
  rng = np.random.default_rng(0)
  for v in source.modulation.trainable_variables:
    v.assign(rng.normal(0.0, 0.1, v.shape).astype(np.float32))
  query_ckpt = tf.train.Checkpoint(**source.checkpoint_items).write(
      str(tmp_path / 'query'))
  standard_ckpt = tf.train.Checkpoint(
      **source.detector.checkpoint_items).write(str(tmp_path / 'standard'))
  saved = lambda layer: {v.name.split('/', 1)[1]: v.numpy()
                         for v in layer.weights}
  for path in (query_ckpt, standard_ckpt):
    task, _ = _task(composites, backbone_levels=[4, 5])
    task.task_config.init_checkpoint = path
    task.task_config.init_checkpoint_modules = 'all'
    model = task.build_model()
    task.initialize(model)
    want = saved(source.detector)
    for name, value in saved(model.detector).items():
      np.testing.assert_array_equal(value, want[name], err_msg=name)
    sites = {**{f'block{k}': m for k, m in model.modulation.blocks.items()},
             **{f'level{k}': m for k, m in model.modulation.levels.items()}}
    old = {**{f'block{k}': m for k, m in source.modulation.blocks.items()},
           **{f'level{k}': m for k, m in source.modulation.levels.items()}}
    assert set(old) < set(sites)
    for name, site in sites.items():
      for v, w in zip(site.weights, old[name].weights if name in old else
                      site.weights):
        if path == query_ckpt and name in old:
          np.testing.assert_array_equal(v.numpy(), w.numpy(), err_msg=name)
        else:  # Not in the checkpoint: the identity.
          assert not np.any(v.numpy()), name
