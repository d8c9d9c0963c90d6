"""The SpotPatch RetinaNet task: gated copies, penalty, base restored."""
import numpy as np
import tensorflow as tf, tf_keras
from official.core import exp_factory
from official.core import task_factory

from univision import registry_imports  # pylint: disable=unused-import
from univision.modeling import patches


def _spot(folder, base_checkpoint: str = '', **gates):
  tf_keras.utils.set_random_seed(0)
  params = exp_factory.get_exp_config('mnv4_retinanet_composites_spot')
  params.override({'task': {
      'init_checkpoint': base_checkpoint,
      'gates': {'temperature_steps': 10, **gates},
      'model': {'input_size': [64, 64, 3]},
      'train_data': {'input_path': f'{folder}/train-*',
                     'global_batch_size': 4}}})
  task = task_factory.get_task(params.task)
  return task, task.build_model(), params


def test_starts_as_the_base_and_a_step_trains_the_patch_only(composites,
                                                            tmp_path):
  # The shared base: a plain detector's checkpoint.
  _, base_model, _ = _spot(composites)
  base_path = tf.train.Checkpoint(**base_model.checkpoint_items).write(
      str(tmp_path / 'base'))
  task, model, params = _spot(composites, base_path, size_weight=0.5,
                              initial_logit=2.0)
  task.initialize(model)
  patch = model.spot_patch
  assert len(patch.layer_names) > 20  # Backbone, FPN and head convs.
  # Every gate chooses its copy, which starts as the restored shared
  # kernel: the outputs are the base detector's.
  images = tf.random.stateless_uniform([1, 64, 64, 3], seed=[3, 4])
  got, want = model(images, training=True), base_model(images, training=True)
  for key in ('cls_outputs', 'box_outputs'):
    for level in got[key]:
      np.testing.assert_allclose(got[key][level], want[key][level],
                                 atol=1e-5)
  before = {id(v): v.numpy() for v in model.weights}
  logits_before = [float(g.logit) for g in patch.gates]
  batch = next(iter(task.build_inputs(params.task.train_data)))
  logs = task.train_step(batch, model, tf_keras.optimizers.SGD(0.01),
                         metrics=task.build_metrics(training=True))
  share = float(logs['expected_patch_share'])
  assert 0.0 < share < 1.0 and np.isfinite(float(logs['total_loss']))
  allowed = {id(v) for v in patches.select(model, 'bn+predictor')}
  allowed |= {id(v) for v in patch.variables_to_train()}
  allowed |= {id(v) for v in model.weights if 'moving' in v.name}
  # The step's noise draw and annealed temperatures are gate state too.
  allowed |= {id(patch.noise), *(id(g.temperature) for g in patch.gates)}
  changed = {id(v) for v in model.weights
             if not np.array_equal(before[id(v)], v.numpy())}
  assert changed and changed <= allowed
  # While the copies equal the shared kernels only the size penalty moves
  # the gates: toward the shared base (the smallest layers' steps are below
  # float32's resolution at a logit of 2).
  after = [float(g.logit) for g in patch.gates]
  assert all(a <= b for a, b in zip(after, logits_before))
  assert sum(a < b for a, b in zip(after, logits_before)) > len(after) // 2
