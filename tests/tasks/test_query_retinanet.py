"""Joint standard + query-modulated training on composite detection data."""
import numpy as np
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


def test_joint_step_trains_both_heads_and_the_modulation(composites):
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
  for layer in (model.modulation, model.query_head, model.head):
    assert changed(layer), layer.name
  # FiLM starts at zero, so the embeddings get gradients from step 2 on.
  assert not changed(model.query_embedding)
  task.train_step(batch, model, optimizer,
                  metrics=task.build_metrics(training=True))
  assert changed(model.query_embedding)


def test_query_weight_zero_leaves_the_query_branch_alone(composites):
  task, params = _task(composites, query_weight=0.0)
  model = task.build_model()
  batch = next(iter(task.build_inputs(params.task.train_data)))
  model(batch[0], query_ids=batch[1]['query'], training=False)
  before = [v.numpy() for v in model.query_head.trainable_variables]
  task.train_step(batch, model, tf_keras.optimizers.SGD(0.01),
                  metrics=task.build_metrics(training=True))
  for v, b in zip(model.query_head.trainable_variables, before):
    np.testing.assert_array_equal(v.numpy(), b)


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
