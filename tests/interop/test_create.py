"""univision.create_model / list_models: timm's entry points, no network."""
import sys
import types

import numpy as np
import pytest

import univision
from tests.interop import timm_fixtures
from univision.interop import create
from univision.interop import hub


@pytest.fixture(scope='module')
def conv_small(tmp_path_factory):
  model = timm_fixtures.random_timm_model('mobilenetv4_conv_small', 96)
  path = str(tmp_path_factory.mktemp('timm') / 'model.safetensors')
  return model, timm_fixtures.save_safetensors(model, path)


def test_list_models_like_timm():
  assert len(univision.list_models()) == 12
  assert univision.list_models('*_aa_*') == ['mobilenetv4_conv_aa_large',
                                             'mobilenetv4_conv_aa_medium']
  tags = univision.list_models('mobilenetv4_conv_small.*', pretrained=True)
  assert 'mobilenetv4_conv_small.e2400_r224_in1k' in tags and len(tags) == 3


def test_weights_file_gives_timms_logits_and_a_new_head(conv_small):
  timm_model, path = conv_small
  images = np.random.default_rng(0).normal(size=(2, 96, 96, 3)).astype(
      np.float32)
  model = univision.create_model('mobilenetv4_conv_small', weights_file=path)
  np.testing.assert_allclose(model(images, training=False),
                             timm_fixtures.timm_logits(timm_model, images),
                             atol=1e-4)
  ten = univision.create_model('MobileNetV4ConvSmall', weights_file=path,
                               num_classes=10)
  assert ten(images, training=False).shape == (2, 10)
  # The backbone is the converted one; only the head is new.
  np.testing.assert_allclose(ten.backbone(images, training=False)['5'],
                             model.backbone(images, training=False)['5'],
                             atol=1e-5)
  features = univision.create_model('mobilenetv4_conv_small',
                                    weights_file=path, features_only=True)
  assert sorted(features(images, training=False)) == ['2', '3', '4', '5',
                                                      '6']


def test_one_more_class_keeps_timms_head_behind_a_background(conv_small):
  timm_model, path = conv_small
  images = np.random.default_rng(1).normal(size=(2, 96, 96, 3)).astype(
      np.float32)
  model = univision.create_model('mobilenetv4_conv_small', weights_file=path,
                                 num_classes=1001)
  logits = model(images, training=False).numpy()
  np.testing.assert_allclose(logits[:, 1:],
                             timm_fixtures.timm_logits(timm_model, images),
                             atol=1e-4)
  assert (logits[:, 0] < -1e3).all()


def test_pretrained_fetches_the_tags_weights(conv_small, monkeypatch):
  _, path = conv_small
  calls = []
  fake = types.SimpleNamespace(
      hf_hub_download=lambda repo, name: calls.append((repo, name)) or path)
  monkeypatch.setitem(sys.modules, 'huggingface_hub', fake)
  univision.create_model('mobilenetv4_conv_small.e1200_r224_in1k',
                         pretrained=True)
  univision.create_model('mobilenetv4_conv_small', pretrained=True)
  assert calls == [
      ('timm/mobilenetv4_conv_small.e1200_r224_in1k', 'model.safetensors'),
      ('timm/mobilenetv4_conv_small.e2400_r224_in1k', 'model.safetensors')]


def test_offline_and_bad_names_say_what_to_do(monkeypatch):
  timm_fixtures.go_offline(monkeypatch)
  with pytest.raises(hub.HubDownloadError,
                     match=r'mobilenetv4_conv_small\.e2400_r224_in1k.*'
                     r'weights_file='):
    univision.create_model('mobilenetv4_conv_small', pretrained=True)
  with pytest.raises(ValueError, match="Unknown MobileNetV4 'resnet50'"):
    create.create_model('resnet50')
  with pytest.raises(ValueError, match='known: .*e3600_r256_in1k'):
    create.create_model('mobilenetv4_conv_small.e1_r1', pretrained=True)
  with pytest.raises(ValueError, match=r'no pretrained weights .*pass '
                     r'weights_file=<a local \.safetensors> \(or '
                     r'pretrained=False\) instead'):
    create.create_model('mobilenetv4_conv_small_035', pretrained=True)


def test_without_weights_the_same_architecture():
  model = univision.create_model('mobilenetv4_conv_small_050', num_classes=7)
  out = model(np.zeros([1, 64, 64, 3], np.float32), training=False)
  assert out.shape == (1, 7)
  assert model.backbone.get_config()['padding'] == 'symmetric'
