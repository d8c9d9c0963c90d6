"""univision equals timm's MobileNetV4 on the same (converted) weights."""

import numpy as np
import pytest
import tensorflow as tf, tf_keras

from tests.interop import timm_fixtures
from univision.interop import timm_mobilenet_v4 as timm_weights
from univision.interop import timm_state_dict
from univision.efficiency import counting
from univision.modeling.backbones import mobilenet_v4

MODELS = [('mobilenetv4_conv_small', 224), ('mobilenetv4_conv_medium', 256),
          ('mobilenetv4_conv_large', 384), ('mobilenetv4_hybrid_medium', 256),
          ('mobilenetv4_hybrid_large', 384),
          ('mobilenetv4_conv_small_035', 224),
          ('mobilenetv4_conv_small_050', 224),
          ('mobilenetv4_hybrid_medium_075', 224),
          ('mobilenetv4_hybrid_large_075', 256),
          ('mobilenetv4_conv_aa_medium', 256),
          ('mobilenetv4_conv_blur_medium', 224),
          ('mobilenetv4_conv_aa_large', 384)]
# The mapping does not depend on the input size (no position embeddings):
# logits are compared at a tag's resolution up to this.
_MAX_SIZE = 256
# Width and anti-aliased variants: built here from their specs.
WIDTH_VARIANTS = [name for name, _ in MODELS
                  if name[-3:].isdigit() or '_aa_' in name or 'blur' in name]


@pytest.fixture(scope='module')
def conv_small(tmp_path_factory):
  model = timm_fixtures.random_timm_model('mobilenetv4_conv_small', 96)
  path = str(tmp_path_factory.mktemp('timm') / 'conv_small.safetensors')
  return model, timm_fixtures.save_safetensors(model, path)


@pytest.mark.parametrize('name,resolution', MODELS)
def test_logits_match_timm(name, resolution, tmp_path):
  size = min(resolution, _MAX_SIZE)  # And a non-square size.
  model = timm_fixtures.random_timm_model(name, size)
  path = timm_fixtures.save_safetensors(model, str(tmp_path / 'w.safetensors'))
  converted = timm_weights.convert(name, path)
  rng = np.random.default_rng(1)
  for height, width in ((size, size), (size // 2 + 32, size // 2 - 32)):
    images = rng.normal(size=(2, height, width, 3)).astype(np.float32)
    want = timm_fixtures.timm_logits(model, images)
    got = converted(images, training=False).numpy()
    assert np.abs(want).max() > 0.5  # Logits are not degenerate.
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


@pytest.mark.parametrize('name', WIDTH_VARIANTS)
def test_width_variants_have_timms_parameter_count_at_full_width(name):
  import timm  # pylint: disable=g-import-not-at-top
  model_id = timm_weights.resolve_model_id(name)
  ours = timm_weights.build_timm_compatible_classifier(model_id)
  # Full width; the count does not depend on the input size.
  ours(np.zeros([1, 64, 64, 3], np.float32), training=False)
  theirs = timm.create_model(name, pretrained=False)
  assert counting.count_params(ours) == sum(
      p.numel() for p in theirs.parameters() if p.requires_grad)


def test_same_padding_is_not_equivalent(conv_small):
  """Why conversion uses `symmetric` padding: with `same` outputs shift."""
  model, path = conv_small
  converted = timm_weights.convert('mobilenetv4_conv_small', path)
  same = mobilenet_v4.MobileNetV4(
      'MobileNetV4ConvSmall', padding='same', norm_epsilon=1e-5)
  same.set_weights(converted.backbone.get_weights())
  images = np.random.default_rng(2).normal(size=(1, 96, 96, 3)).astype(
      np.float32)
  got_symmetric = converted.backbone(images)['5'].numpy()
  got_same = same(images)['5'].numpy()
  assert np.abs(got_symmetric - got_same).max() > 1e-2


def test_background_class_for_model_garden_labels(conv_small):
  model, path = conv_small
  converted = timm_weights.convert('mobilenetv4_conv_small', path,
                                   num_classes=1001)
  images = np.random.default_rng(3).normal(size=(2, 96, 96, 3)).astype(
      np.float32)
  got = converted(images, training=False).numpy()
  np.testing.assert_allclose(got[:, 1:], timm_fixtures.timm_logits(
      model, images), atol=1e-4)
  assert (got[:, 0] < -1e3).all()


def test_wrong_model_is_rejected(conv_small):
  _, path = conv_small
  with pytest.raises(ValueError, match='right model_id'):
    timm_weights.convert('MobileNetV4ConvMedium', path)


def test_renamed_and_reshaped_tensors_are_listed(conv_small, tmp_path):
  _, path = conv_small
  tensors = timm_state_dict.read_safetensors(path)
  tensors['blocks.2.0.pw_exp.conv.weight_renamed'] = tensors.pop(
      'blocks.2.0.pw_exp.conv.weight')
  tensors['conv_head.weight'] = tensors['conv_head.weight'][:100]
  model = timm_weights.build_timm_compatible_classifier(
      'MobileNetV4ConvSmall')
  with pytest.raises(ValueError) as error:
    timm_weights.load_timm_weights(model, tensors)
  message = str(error.value)
  assert 'timm weights do not fit MobileNetV4ConvSmall:' in message
  assert 'missing in timm weights: blocks.2.0.pw_exp.conv.weight' in message
  assert 'unused timm tensor: blocks.2.0.pw_exp.conv.weight_renamed' in message
  assert 'shape mismatch: conv_head.weight (1, 1, 960, 100)' in message


def test_class_count_mismatch(conv_small):
  _, path = conv_small
  with pytest.raises(ValueError, match='10 classes, the timm weights 1000'):
    timm_weights.convert('MobileNetV4ConvSmall', path, num_classes=10)


def test_model_names():
  assert timm_weights.resolve_model_id(
      'mobilenetv4_hybrid_large.ix_e600_r384_in1k') == 'MobileNetV4HybridLarge'
  assert timm_weights.resolve_model_id('MobileNetV4ConvSmall') == (
      'MobileNetV4ConvSmall')
  # Every timm architecture has weights but the untrained width variants.
  assert set(timm_weights.TIMM_NAMES.values()) - set(
      timm_weights.TIMM_HUB_WEIGHTS) == {'MobileNetV4ConvSmall035',
                                         'MobileNetV4HybridMedium075',
                                         'MobileNetV4HybridLarge075',
                                         'MobileNetV4ConvAAMedium'}
