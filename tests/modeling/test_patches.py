"""Model patches: selection by kind, size, save / load."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from official.core import exp_factory
from official.core import task_factory
from official.vision.modeling.heads import dense_prediction_heads

from univision import registry_imports  # pylint: disable=unused-import
from univision.modeling import patches


def _detector(model_id='MobileNetV4ConvSmall', head=None):
  params = exp_factory.get_exp_config('mnv4_retinanet_composites')
  params.override({'task': {'model': {
      'input_size': [64, 64, 3], 'head': head or {},
      'backbone': {'mobilenet_v4': {'model_id': model_id}}}}})
  model = task_factory.get_task(params.task).build_model()
  model(np.zeros((1, 64, 64, 3), np.float32), training=False)
  return model


@pytest.fixture(scope='module')
def detector():
  return _detector()


def _short(v):
  return v.name.split('/')[-1].split(':')[0]


def test_bn_patch_is_every_batch_norm_variable(detector):
  selected = patches.select(detector, 'bn')
  norms = [l for l in detector.submodules
           if isinstance(l, patches.NORM_LAYERS)]
  want = {id(v) for l in norms for v in l.weights}
  assert {id(v) for v in selected} == want
  assert {_short(v) for v in selected} == {'gamma', 'beta', 'moving_mean',
                                           'moving_variance'}
  assert {_short(v) for v in patches.trainable(selected)} == {'gamma', 'beta'}


def test_bias_and_depthwise_patches(detector):
  biases = patches.select(detector, 'bias')
  assert biases and {_short(v) for v in biases} == {'bias'}
  depthwise = patches.select(detector, 'depthwise')
  assert depthwise and {_short(v) for v in depthwise} == {'depthwise_kernel'}
  all_depthwise = [v for v in detector.weights
                   if _short(v) == 'depthwise_kernel']
  assert len(depthwise) == len(all_depthwise)


def test_head_patch_is_the_detection_head(detector):
  selected = patches.select(detector, 'head')
  assert [id(v) for v in selected] == [
      id(v) for v in patches.all_variables(detector)
      if id(v) in {id(w) for w in detector.head.weights}]
  assert not any(id(v) in {id(w) for w in detector.backbone.weights}
                 for v in selected)


def test_combined_patch_is_the_union_in_a_fixed_order(detector):
  combined = patches.select(detector, 'bn+head')
  ids = [id(v) for v in combined]
  assert len(ids) == len(set(ids))
  union = {id(v) for v in patches.select(detector, 'bn')} | {
      id(v) for v in patches.select(detector, 'head')}
  assert set(ids) == union
  order = {id(v): i for i, v in enumerate(patches.all_variables(detector))}
  assert ids == sorted(ids, key=order.get)


def test_size_counts_trained_parameters(detector):
  bn = patches.size(detector, 'bn')
  gammas_betas = sum(int(np.prod(v.shape)) for v in patches.select(detector, 'bn')
                     if _short(v) in ('gamma', 'beta'))
  assert bn.parameters == gammas_betas
  assert bn.file_bytes == 4 * 2 * gammas_betas  # Statistics stored too.
  assert 0 < bn.fraction < patches.size(detector, 'bn+head').fraction < 1


def test_save_load_round_trip(detector, tmp_path):
  path = patches.save(detector, 'bn+bias', str(tmp_path / 'task1.npz'))
  saved = [v.numpy() for v in patches.select(detector, 'bn+bias')]
  for v in patches.select(detector, 'bn+bias'):
    v.assign(v + 1.0)
  assert patches.load(detector, path) == ('bn', 'bias')
  for v, want in zip(patches.select(detector, 'bn+bias'), saved):
    np.testing.assert_array_equal(v.numpy(), want)


def test_patch_of_another_architecture_is_refused(detector, tmp_path):
  other = _detector('MobileNetV4ConvMedium')
  path = patches.save(other, 'depthwise', str(tmp_path / 'medium.npz'))
  with pytest.raises(ValueError, match='medium.npz: .*does not fit|'
                     'medium.npz: .* variables in the patch'):
    patches.load(detector, path)


def test_unknown_kind_is_named():
  with pytest.raises(ValueError, match=r"Patch 'bn\+filters': unknown kind"):
    patches.parse_kinds('bn+filters')


def test_head_on_a_model_without_head_is_named():
  model = tf_keras.Sequential([tf_keras.layers.Dense(2, input_shape=(3,))])
  with pytest.raises(ValueError, match='has no `head`'):
    patches.select(model, 'head')


def test_corrupt_patch_file_is_named(detector, tmp_path):
  bad = tmp_path / 'bad.npz'
  bad.write_bytes(b'PK not really a zip')
  with pytest.raises(ValueError, match='bad.npz: not a patch file'):
    patches.load(detector, str(bad))


def test_predictor_patch_is_the_heads_output_layers(detector):
  selected = patches.select(detector, 'predictor')
  names = sorted(v.name.split('/')[-2] + '/' + _short(v) for v in selected)
  # The composites detector's head is separable (a mobile RetinaNet).
  assert names == [f'{layer}/{variable}' for layer in ('boxes', 'scores')
                   for variable in ('bias', 'depthwise_kernel',
                                    'pointwise_kernel')]
  head_ids = {id(v) for v in patches.select(detector, 'head')}
  assert {id(v) for v in selected} < head_ids


def test_switcher_never_mixes_two_tasks_patches(detector, tmp_path):
  base = {id(v): v.numpy() for v in detector.weights}
  bn, predictor = (patches.select(detector, k) for k in ('bn', 'predictor'))
  for v in bn:
    v.assign(v + 1.0)
  task_a = patches.save(detector, 'bn', str(tmp_path / 'a.npz'))
  for v in bn:
    v.assign(base[id(v)])
  for v in predictor:
    v.assign(v - 2.0)
  task_b = patches.save(detector, 'predictor', str(tmp_path / 'b.npz'))
  for v in predictor:
    v.assign(base[id(v)])

  switcher = patches.PatchSwitcher(detector)
  assert switcher.apply(task_a) == ('bn',)
  assert all(np.array_equal(v.numpy(), base[id(v)] + 1.0) for v in bn)
  assert switcher.apply(task_b) == ('predictor',)
  for v in detector.weights:  # Task a's BN is gone, task b's predictor set.
    want = base[id(v)] - 2.0 if any(v is p for p in predictor) else base[id(v)]
    np.testing.assert_array_equal(v.numpy(), want, err_msg=v.name)
  switcher.reset()
  assert all(np.array_equal(v.numpy(), base[id(v)]) for v in detector.weights)


def test_selection_does_not_depend_on_frozen_layers():
  model = _detector()
  spec = 'bn+bias+predictor+head'
  before = [id(v) for v in patches.select(model, spec)]
  size = patches.size(model, spec)
  for layer in model.submodules:
    if isinstance(layer, patches.NORM_LAYERS):
      layer.trainable = False
  assert [id(v) for v in patches.select(model, spec)] == before
  assert patches.size(model, spec) == size


def _names(variables):
  return sorted(v.name.split('/')[-2] + '/' + _short(v) for v in variables)


_SEPARABLE = ('bias', 'depthwise_kernel', 'pointwise_kernel')


def test_last_head_conv_is_the_last_conv_of_each_tower(detector):
  # The composites head: 4 separable convs per tower, shared by the levels.
  assert _names(patches.select(detector, 'last_head_conv')) == [
      f'{net}-conv_3/{name}' for net in ('boxnet', 'classnet')
      for name in _SEPARABLE]


def test_head_convs_are_the_towers_without_norms_or_predictor(detector):
  selected = patches.select(detector, 'head_convs')
  assert _names(selected) == sorted(
      f'{net}-conv_{i}/{name}' for net in ('boxnet', 'classnet')
      for i in range(4) for name in _SEPARABLE)
  ids = {id(v) for v in selected}
  assert not ids & {id(v) for v in patches.select(detector, 'bn+predictor')}
  # Towers, their norms and the predictor make up the whole head.
  whole = ids | {id(v) for v in patches.select(detector, 'bn+predictor')
                 if any(v is w for w in detector.head.weights)}
  assert whole == {id(v) for v in detector.head.weights}


def test_decoder_is_every_variable_of_the_fpn(detector):
  selected = patches.select(detector, 'decoder')
  assert [id(v) for v in selected] == [
      id(v) for v in patches.all_variables(detector)
      if any(v is w for w in detector.decoder.weights)]
  assert len(selected) == len(detector.decoder.weights) > 0
  others = detector.head.weights + detector.backbone.weights
  assert not {id(v) for v in selected} & {id(v) for v in others}


def test_fixed_patch_sizes_grow_towards_the_full_detector(detector):
  fractions = [patches.size(detector, spec).fraction for spec in (
      'predictor', 'bn+predictor', 'bn+last_head_conv+predictor',
      'bn+head_convs+predictor', 'bn+head_convs+decoder+predictor')]
  assert fractions == sorted(fractions) and len(set(fractions)) == 5
  assert 0 < fractions[0] and fractions[-1] < 1


def test_a_kind_selecting_nothing_names_kind_and_model():
  model = _detector(head={'num_convs': 0})
  for kind in ('head_convs', 'last_head_conv'):
    with pytest.raises(ValueError, match=(
        rf"Patch 'bn\+{kind}': kind '{kind}' selects no variable of "
        rf"RetinaNetModel '{model.name}'")):
      patches.select(model, f'bn+{kind}')
  assert patches.select(model, 'predictor')  # Other kinds still work.


class _HeadOnly(tf_keras.Model):
  """A model that is only a detection head (enough for the head kinds)."""

  def __init__(self, head):
    super().__init__()
    self.head = head


def test_tower_kinds_on_per_level_and_attribute_towers():
  head = dense_prediction_heads.RetinaNetHead(
      min_level=3, max_level=4, num_classes=3, num_anchors_per_location=1,
      num_convs=2, num_filters=8, share_level_convs=False,
      attribute_heads=[{'name': 'depth', 'type': 'regression', 'size': 1,
                        'prediction_tower_name': ''}])
  head({'3': tf.zeros([1, 4, 4, 8]), '4': tf.zeros([1, 2, 2, 8])})
  model = _HeadOnly(head)
  # A class and a box tower per level, and the attribute's tower.
  assert len(patches.tower_convs(model)) == 5
  last = patches.select(model, 'last_head_conv')
  assert sorted({v.name.split('/')[-2] for v in last}) == [
      'boxnet-conv_3_1', 'boxnet-conv_4_1', 'classnet-conv_3_1',
      'classnet-conv_4_1', 'depth-conv_1']
  assert len(patches.select(model, 'head_convs')) == 2 * 2 * 5
  with pytest.raises(ValueError, match='has no `decoder` attribute'):
    patches.select(model, 'decoder')
