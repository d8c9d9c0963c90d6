"""Tests for SpotPatch's gates attached to a model's conv and dense layers."""
import numpy as np
import pytest
import tensorflow as tf, tf_keras

from univision.modeling import spot_patch


def _model() -> tf_keras.Model:
  """Every candidate kind, and one conv called twice (as MG's heads do)."""
  tf_keras.utils.set_random_seed(0)
  inputs = tf_keras.Input([8, 8, 3])
  x = tf_keras.layers.Conv2D(4, 3, padding='same', name='conv')(inputs)
  x = tf_keras.layers.BatchNormalization(name='bn')(x)
  x = tf_keras.layers.DepthwiseConv2D(3, padding='same', name='dw')(x)
  x = tf_keras.layers.SeparableConv2D(4, 3, padding='same', name='sep')(x)
  shared = tf_keras.layers.Conv2D(4, 1, name='shared')
  x = shared(x) + shared(tf.nn.relu(x))
  x = tf_keras.layers.GlobalAveragePooling2D()(x)
  outputs = tf_keras.layers.Dense(2, name='predictor')(x)
  return tf_keras.Model(inputs, outputs)


def _images():
  return tf.random.stateless_normal([2, 8, 8, 3], seed=[1, 2])


def _patched(**kwargs):
  model = _model()
  base = model(_images(), training=False).numpy()
  patch = spot_patch.attach(model, exclude=[model.get_layer('predictor')],
                            **kwargs)
  return model, patch, base


def test_candidates_are_the_conv_and_dense_layers_but_the_excluded():
  model, patch, _ = _patched()
  assert patch.layer_names == ['conv', 'dw', 'sep', 'shared']
  assert patch.sizes == [3 * 3 * 3 * 4, 3 * 3 * 4, 3 * 3 * 4 + 4 * 4, 4 * 4]
  # Only copies and logits are trained; the shared kernels are not the
  # patch's variables.
  shared_ids = {id(v) for v in model.trainable_variables}
  assert not shared_ids & {id(v) for v in patch.variables_to_train()}
  assert len(patch.variables_to_train()) == 5 + 4


@pytest.mark.parametrize('hard', [0.0, 1.0])
def test_hard_gates_give_exactly_the_base_or_the_copies(hard):
  model, patch, base = _patched()
  for gate in patch.gates:
    gate._hard_value = hard  # pylint: disable=protected-access
  for copies in patch.copies:
    for copy in copies:
      copy.assign(copy * 1.5 + 0.25)
  if hard == 0.0:
    np.testing.assert_array_equal(model(_images(), training=False), base)
    return
  # Gate 1 everywhere: the same as a plain model holding the copies.
  plain = _model()
  plain(_images())
  for layer, copies in zip(
      [plain.get_layer(n) for n in patch.layer_names], patch.copies):
    for attribute, copy in zip(spot_patch.kernel_attributes(layer), copies):
      getattr(layer, attribute).assign(copy)
  np.testing.assert_array_equal(model(_images(), training=False),
                                plain(_images(), training=False))


def test_inference_uses_the_likelier_side_of_each_gate():
  model, patch, base = _patched(initial_logit=-1.0)
  for copies in patch.copies:
    for copy in copies:
      copy.assign(copy * 2.0)
  np.testing.assert_array_equal(model(_images(), training=False), base)
  patch.gates[0].logit.assign(1.0)  # Only 'conv' takes its copy.
  assert not np.array_equal(model(_images(), training=False), base)
  assert patch.harden() == ['conv']


def test_gradients_reach_copies_and_gate_logits_through_a_step():
  model, patch, _ = _patched(initial_logit=2.0, initial_temperature=0.5)
  patch.noise.assign(tf.fill(patch.noise.shape, 0.5))  # Noise 0: g = 1.
  # While a copy equals the shared kernel the gate cannot matter: its
  # gradient is 0. Copies that have moved give the gates a signal.
  for copies in patch.copies:
    for copy in copies:
      copy.assign(copy * 1.1)
  variables = patch.variables_to_train()
  with tf.GradientTape() as tape:
    out = model(_images(), training=True)
    loss = tf.reduce_sum(out ** 2)  # No penalty: logits learn from the
  grads = tape.gradient(loss, variables)  # task through the sample alone.
  assert all(g is not None and float(tf.reduce_sum(tf.abs(g))) > 0
             for g in grads)
  # In inference the gates are hard thresholds: no gradient to the logits.
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(model(_images(), training=False) ** 2)
  assert all(g is None for g in tape.gradient(
      loss, [gate.logit for gate in patch.gates]))


def test_one_gate_value_per_step_for_a_layer_called_twice():
  model, patch, _ = _patched(initial_logit=0.0)
  calls = []
  gate = patch.gates[patch.layer_names.index('shared')]
  original = gate.value

  def recording_value(**kwargs):
    calls.append(float(original(**kwargs)))
    return calls[-1]

  gate.value = recording_value
  for _ in range(5):
    patch.resample()
    calls.clear()
    model(_images(), training=True)
    assert len(calls) == 2 and calls[0] == calls[1]


def test_reset_copies_and_bad_layers():
  model, patch, _ = _patched()
  patch.copies[0][0].assign(tf.zeros_like(patch.copies[0][0]))
  patch.reset_copies()
  np.testing.assert_array_equal(patch.copies[0][0],
                                model.get_layer('conv').kernel)
  with pytest.raises(ValueError, match="layer 'conv' already has a gate"):
    spot_patch.SpotPatch([model.get_layer('conv')])
  with pytest.raises(ValueError, match="layer 'bn' is not a built conv"):
    spot_patch.SpotPatch([model.get_layer('bn')])


def test_a_checkpoint_of_the_patch_holds_copies_and_gates_only(tmp_path):
  model, patch, _ = _patched()
  path = tf.train.Checkpoint(patch=patch).write(str(tmp_path / 'patch'))
  names = [name for name, _ in tf.train.list_variables(path)]
  kernels = [n for n in names if 'copies' in n]
  logits = [n for n in names if 'gates' in n and 'logit' in n]
  assert len(kernels) == 5 and len(logits) == 4
  stored = sum(int(np.prod(shape)) for name, shape in
               tf.train.list_variables(path) if 'copies' in name)
  assert stored == sum(patch.sizes)  # No shared kernel came along.


class _Block(tf_keras.layers.Layer):
  """A backbone block: expand and depthwise convs under one layer."""

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self.expand = tf_keras.layers.Conv2D(4, 1, name='expand')
    self.dw = tf_keras.layers.DepthwiseConv2D(3, padding='same', name='dw')

  def call(self, inputs):
    return self.dw(self.expand(inputs))


def _detector_like() -> tuple[tf_keras.Model, tf_keras.layers.Layer]:
  """A 'backbone' of two blocks and a stem conv, then a 'head' conv."""
  tf_keras.utils.set_random_seed(1)
  inputs = tf_keras.Input([8, 8, 3])
  x = tf_keras.layers.Conv2D(4, 3, padding='same', name='stem')(inputs)
  x = _Block(name='block1')(x)
  x = _Block(name='block2')(x)
  backbone = tf_keras.Model(inputs, x, name='backbone')
  head_conv = tf_keras.layers.Conv2D(2, 1, name='head_conv')
  images = tf_keras.Input([8, 8, 3])
  model = tf_keras.Model(images, head_conv(backbone(images)))
  model(_images())
  return model, head_conv


def test_block_granularity_gates_whole_backbone_blocks():
  model, _ = _detector_like()
  patch = spot_patch.attach(model, granularity='block')
  layers = {name: [patch.layer_names[i] for i in group]
            for name, group in zip(patch.gate_names, patch.groups)}
  assert layers == {'stem': ['stem'], 'block1': ['expand', 'dw'],
                    'block2': ['expand', 'dw'], 'head_conv': ['head_conv']}
  sizes = dict(zip(patch.gate_names, patch.sizes))
  assert sizes == {'stem': 3 * 3 * 3 * 4, 'block1': 4 * 4 + 3 * 3 * 4,
                   'block2': 4 * 4 + 3 * 3 * 4, 'head_conv': 4 * 2}
  base = model(_images(), training=False).numpy()
  for copies in patch.copies:
    for copy in copies:
      copy.assign(copy * 1.5)
  for gate in patch.gates:
    gate.logit.assign(-1.0)
  block1 = patch.gate_names.index('block1')
  patch.gates[block1].logit.assign(1.0)  # Both its layers switch.
  assert patch.harden() == ['block1']
  on = patch.groups[block1]
  # One kernel per layer here: positions are the layers' indices.
  assert sorted(patch.patch_kernels()) == sorted(on)
  assert not np.array_equal(model(_images(), training=False), base)
  # A layer-granularity patch with just block 1's layers on agrees.
  plain, _ = _detector_like()
  layer_patch = spot_patch.attach(plain)
  for mine, theirs in zip(patch.copies, layer_patch.copies):
    for a, b in zip(mine, theirs):
      b.assign(a)
  for i, gate in enumerate(layer_patch.gates):
    gate.logit.assign(1.0 if i in on else -1.0)
  np.testing.assert_array_equal(model(_images(), training=False),
                                plain(_images(), training=False))


def test_every_layer_needs_one_gate_group():
  model, _ = _detector_like()
  layers = spot_patch.candidates(model)
  with pytest.raises(ValueError, match=f"layer '{layers[-1].name}' is in "
                     'none'):
    spot_patch.SpotPatch(layers, groups=[[i] for i in range(5)])
  with pytest.raises(ValueError, match='in several groups'):
    spot_patch.SpotPatch(layers, groups=[[i] for i in range(6)] + [[0]])
  with pytest.raises(ValueError, match='granularity'):
    spot_patch.attach(model, granularity='channel')
