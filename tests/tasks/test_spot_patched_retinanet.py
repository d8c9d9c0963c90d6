"""The SpotPatch RetinaNet task: gated copies, penalty, base restored."""
import json
import re

import numpy as np
import pytest
import tensorflow as tf, tf_keras
from official.core import exp_factory
from official.core import task_factory

from tests import conftest
from univision import registry_imports  # pylint: disable=unused-import
from univision.modeling import patches
from univision.tasks import spot_patched_retinanet


def _spot(folder, base_checkpoint: str = '', **gates):
  tf_keras.utils.set_random_seed(0)
  params = exp_factory.get_exp_config('mnv4_retinanet_composites_spot')
  params.override({'task': {
      'init_checkpoint': base_checkpoint,
      'gates': {'temperature_steps': 10, **gates},
      'model': {'input_size': [64, 64, 3], 'head': conftest.SMALL_HEAD},
      'train_data': {'input_path': f'{folder}/train-*',
                     'global_batch_size': 4}}})
  task = task_factory.get_task(params.task)
  return task, task.build_model(), params


def test_starts_as_the_base_trains_the_patch_and_saves_it(composites,
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

  # Hardened with some layers in the patch, saved, and loaded into the
  # plain base: the same detector, to the bit.
  for gate in patch.gates:
    gate.logit.assign(-1.0)
  on = [2, 7, len(patch.gates) - 1]
  for i in on:
    patch.gates[i].logit.assign(1.0)
  assert patch.harden() == [patch.gate_names[i] for i in on]
  path = patches.save(model, 'bn+predictor', str(tmp_path / 'spot.npz'),
                      kernels=patch.patch_kernels())
  patches.load(base_model, path)
  got = model(images, training=False)
  want = base_model(images, training=False)
  for key in ('detection_boxes', 'detection_scores', 'num_detections'):
    np.testing.assert_array_equal(got[key], want[key])
  # The file holds the patch's values and nothing else.
  with np.load(path) as data:
    stored = sum(data[k].nbytes for k in data.files if k != '__meta__')
  kernels = sum(patch.sizes[i] for i in on)
  kind_values = patches.count_parameters(
      patches.select(model, 'bn+predictor'))
  assert stored == 4 * (kernels + kind_values)


def test_a_patch_kernel_that_does_not_fit_is_named(composites, tmp_path):
  task, model, _ = _spot(composites, initial_logit=1.0)
  model.spot_patch.harden()
  path = str(tmp_path / 'spot.npz')
  patches.save(model, 'predictor', path,
               kernels=model.spot_patch.patch_kernels())
  with np.load(path) as data:
    arrays = {k: data[k] for k in data.files}
  meta = json.loads(str(arrays['__meta__']))
  last = f'v{len(meta["names"]) + len(meta["kernel_positions"]) - 1:05d}'
  arrays[last] = arrays[last][..., :1]  # As if from a narrower base.
  np.savez(path, **arrays)
  name = re.escape(meta['kernel_names'][-1])
  with pytest.raises(ValueError,
                     match=rf'spot.npz: patch variable {name} .* does not fit'):
    patches.load(model, path)


def test_gate_gradient_steps_keep_the_penalty_weighted_by_size(composites):
  # Copies equal to the shared kernels: only the penalty moves the logits,
  # each by learning_rate x lambda x |W_l| / |W| x sigmoid'(logit).
  task, model, params = _spot(composites, size_weight=0.5, learning_rate=20.0)
  task.initialize(model)
  patch = model.spot_patch
  before = np.array([float(g.logit) for g in patch.gates])
  batch = next(iter(task.build_inputs(params.task.train_data)))
  task.train_step(batch, model, tf_keras.optimizers.Adam(0.01),
                  metrics=task.build_metrics(training=True))
  steps = before - np.array([float(g.logit) for g in patch.gates])
  sizes = np.array(patch.sizes, np.float64)
  want = 20.0 * 0.5 * sizes / task._total_parameters * 0.25  # pylint: disable=protected-access
  np.testing.assert_allclose(steps, want, rtol=1e-3, atol=1e-7)
  # Unlike an Adam step (about its learning rate for every logit), the
  # largest layer's gate moves far more than the smallest's.
  assert steps.max() > 50 * steps.min()


def test_the_penalty_warms_up_from_zero(composites):
  task, model, params = _spot(composites, size_weight=0.5, learning_rate=20.0,
                              penalty_warmup_steps=4)
  task.initialize(model)
  patch = model.spot_patch
  before = [float(g.logit) for g in patch.gates]
  batch = next(iter(task.build_inputs(params.task.train_data)))
  task.train_step(batch, model, tf_keras.optimizers.Adam(0.01),
                  metrics=task.build_metrics(training=True))
  # Step 0: no penalty, and copies equal to the shared kernels give the
  # logits no task gradient either (rounding aside; the penalty alone
  # would move the smallest gate's logit by > 1e-4).
  np.testing.assert_allclose([float(g.logit) for g in patch.gates], before,
                             atol=1e-9)
  gates = params.task.gates
  weights = [float(spot_patched_retinanet.penalty_weight(step, gates))
             for step in (0, 2, 4, 9)]
  np.testing.assert_allclose(weights, [0.0, 0.25, 0.5, 0.5])


def test_a_negative_warmup_is_named(composites):
  with pytest.raises(ValueError, match='penalty_warmup_steps must be >= 0'):
    _spot(composites, penalty_warmup_steps=-1)
