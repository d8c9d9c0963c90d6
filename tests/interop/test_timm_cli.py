"""The timm conversion CLI: checkpoint as init_checkpoint, SavedModel, download."""
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf, tf_keras
import torch
import yaml
from official.core import task_factory
from official.vision.ops import preprocess_ops

from tests import conftest
from tests.interop import test_timm_hiera
from tests.interop import timm_fixtures
from univision import registry_imports  # pylint: disable=unused-import
from univision.core import config_parsing
from univision.core import image_normalization
from univision.interop import hub
from univision.interop import timm_cli
from univision.interop import timm_tags

MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
STD = np.array([0.229, 0.224, 0.225], np.float32) * 255


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
  """timm Conv-S (random) converted with the CLI, as a user runs it."""
  work = tmp_path_factory.mktemp('timm_cli')
  model = timm_fixtures.random_timm_model('mobilenetv4_conv_small', 224)
  path = timm_fixtures.save_safetensors(model, str(work / 'w.safetensors'))
  out = str(work / 'out')
  result = subprocess.run(
      [sys.executable, '-m', 'univision.interop.timm_cli',
       '--model=mobilenetv4_conv_small', f'--safetensors={path}',
       f'--output_dir={out}'], cwd=conftest.REPO, capture_output=True,
      text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stderr
  return dict(model=model, out=out, stdout=result.stdout)


def _params(yaml_path, override=''):
  return config_parsing.parse_experiment('mnv4_imagenet', [yaml_path],
                                         override)


def _images(seed=0, size=224):
  return np.random.default_rng(seed).integers(
      0, 256, (2, size, size, 3)).astype(np.uint8)


def test_cli_writes_checkpoint_yaml_and_saved_model(converted):
  out = converted['out']
  for line in ('checkpoint:', 'yaml:', 'saved_model:'):
    assert line in converted['stdout']
  assert tf.train.latest_checkpoint(os.path.join(out, 'init_checkpoint'))
  assert os.path.exists(os.path.join(out, 'saved_model', 'saved_model.pb'))


def test_checkpoint_is_a_usable_init_checkpoint(converted):
  params = _params(os.path.join(converted['out'], 'timm_weights.yaml'),
                   'task.model.input_size=[224,224,3]')
  assert params.task.model.backbone.mobilenet_v4.padding == 'symmetric'
  task = task_factory.get_task(params.task)
  model = task.build_model()
  task.initialize(model)
  images = _images()
  normalized = (images.astype(np.float32) - MEAN) / STD
  np.testing.assert_allclose(
      model(normalized, training=False).numpy(),
      timm_fixtures.timm_logits(converted['model'], normalized), atol=1e-4)


def test_backbone_only_init_for_another_dataset(converted):
  params = _params(os.path.join(converted['out'], 'timm_weights.yaml'),
                   'task.model.num_classes=10,'
                   'task.init_checkpoint_modules=backbone,'
                   'task.model.input_size=[96,96,3]')
  task = task_factory.get_task(params.task)
  model = task.build_model()
  task.initialize(model)
  images = np.random.default_rng(4).normal(size=(1, 96, 96, 3)).astype(
      np.float32)
  with torch.no_grad():  # timm's 1280-d embedding, before the classifier.
    features = converted['model'].forward_head(
        converted['model'].forward_features(
            torch.from_numpy(images.transpose(0, 3, 1, 2))),
        pre_logits=True).numpy()
  ours = model.backbone(images, training=False)['6'].numpy().reshape(1, -1)
  np.testing.assert_allclose(ours, features, atol=1e-4)


def test_saved_model_matches_timm_on_uint8_images(converted):
  served = tf.saved_model.load(os.path.join(converted['out'], 'saved_model'))
  images = _images(seed=5)
  logits = served.signatures['serving_default'](tf.constant(images))['logits']
  # Model Garden's serving centre-crops (fraction 0.875) and resizes back.
  cropped = np.stack([tf.image.resize(
      preprocess_ops.center_crop_image(tf.constant(image, tf.float32)),
      [224, 224]).numpy() for image in images])
  normalized = (cropped - MEAN) / STD
  np.testing.assert_allclose(
      logits.numpy(),
      timm_fixtures.timm_logits(converted['model'], normalized), atol=1e-4)


@pytest.mark.parametrize('model, repo', [
    ('MobileNetV4HybridMedium',
     'timm/mobilenetv4_hybrid_medium.ix_e550_r256_in1k'),
    ('hiera_base_plus_224', 'timm/hiera_base_plus_224.mae_in1k_ft_in1k')])
def test_download_uses_timm_hub_weights(monkeypatch, tmp_path, model, repo):
  calls = []
  fake = types.SimpleNamespace(
      hf_hub_download=lambda repo, name: calls.append((repo, name)) or str(
          tmp_path / name))
  monkeypatch.setitem(sys.modules, 'huggingface_hub', fake)
  path = timm_cli.download_weights(model)
  assert calls == [(repo, 'model.safetensors')]
  assert path.endswith('model.safetensors')


def test_a_tag_sets_the_yaml_and_saved_model_preprocessing(tmp_path):
  # An Inception-normalized tag, evaluated at 320 px without a crop.
  model = timm_fixtures.random_timm_model('mobilenetv4_conv_small', 224)
  path = timm_fixtures.save_safetensors(model, str(tmp_path / 'w.safetensors'))
  written = timm_cli.convert_to_dir('mobilenetv4_conv_small.e3600_r256_in1k',
                                    path, str(tmp_path / 'out'))
  task = _params(written['yaml']).task
  assert task.model.input_size == [320, 320, 3]
  np.testing.assert_allclose(task.preprocessing.mean_rgb, [127.5] * 3)
  np.testing.assert_allclose(task.preprocessing.stddev_rgb, [127.5] * 3)
  assert (task.validation_data.center_crop_fraction,
          task.validation_data.tf_resize_method) == (1.0, 'bicubic')
  served = tf.saved_model.load(written['saved_model'])
  images = _images(seed=8, size=320)
  logits = served.signatures['serving_default'](tf.constant(images))['logits']
  inception = images.astype(np.float32) / 127.5 - 1.0
  np.testing.assert_allclose(logits.numpy(),
                             timm_fixtures.timm_logits(model, inception),
                             atol=1e-4)


def test_an_in12k_tag_gives_its_class_count(tmp_path):
  model = timm_fixtures.random_timm_model('mobilenetv4_conv_small', 64,
                                          num_classes=11821)
  path = timm_fixtures.save_safetensors(model, str(tmp_path / 'w.safetensors'))
  tag = timm_tags.Tag('mobilenetv4_conv_small', 'made_up_in12k', 11821, 224,
                      256, 0.95, 1.0, *timm_tags.IMAGENET)
  written = timm_cli.convert_to_dir('mobilenetv4_conv_small', path,
                                    str(tmp_path / 'out'), num_classes=1000,
                                    export_saved_model=False, tag=tag)
  assert _params(written['yaml']).task.model.num_classes == 11821


def test_the_download_follows_the_tag(monkeypatch, tmp_path):
  calls = []
  monkeypatch.setitem(sys.modules, 'huggingface_hub', types.SimpleNamespace(
      hf_hub_download=lambda repo, name: calls.append(repo) or str(tmp_path)))
  timm_cli.download_weights('mobilenetv4_hybrid_medium.e200_r256_in12k')
  assert calls == ['timm/mobilenetv4_hybrid_medium.e200_r256_in12k']
  default = timm_cli.mobilenet_v4_tag('mobilenetv4_conv_small_050',
                                      download=True)
  assert default.name == 'mobilenetv4_conv_small_050.e3000_r224_in1k'
  assert timm_cli.mobilenet_v4_tag('mobilenetv4_conv_small_050',
                                   download=False) is None
  with pytest.raises(ValueError, match="Unknown timm MobileNetV4 weights "
                     "'mobilenetv4_conv_small.e1_r1'"):
    timm_cli.download_weights('mobilenetv4_conv_small.e1_r1')


def test_a_model_without_published_weights_names_the_flag():
  with pytest.raises(ValueError, match=r"no pretrained weights for "
                     r"'mobilenetv4_hybrid_medium_075' .*--safetensors="):
    timm_cli.download_weights('mobilenetv4_hybrid_medium_075')


def test_unknown_model_is_named(tmp_path):
  with pytest.raises(ValueError, match="--model='mobilenetv9'"):
    timm_cli.convert_to_dir('mobilenetv9', 'x.safetensors', str(tmp_path))


def test_detection_backbone_starts_from_timm_weights(converted):
  """The detection YAML loads timm's backbone into a head-less detector."""
  params = config_parsing.parse_experiment(
      'mnv4_retinanet_composites',
      [os.path.join(converted['out'], 'timm_weights_detection.yaml')],
      'task.model.input_size=[96,96,3]')
  assert not params.task.model.backbone.mobilenet_v4.include_head
  task = task_factory.get_task(params.task)
  detector = task.build_model()
  task.initialize(detector)
  classifier_params = _params(
      os.path.join(converted['out'], 'timm_weights.yaml'),
      'task.model.input_size=[96,96,3]')
  classifier_task = task_factory.get_task(classifier_params.task)
  classifier = classifier_task.build_model()
  classifier_task.initialize(classifier)  # Matches timm (tests above).
  images = np.random.default_rng(6).normal(size=(1, 96, 96, 3)).astype(
      np.float32)
  got = detector.backbone(images, training=False)
  want = classifier.backbone(images, training=False)
  for level in ('3', '4', '5'):
    np.testing.assert_allclose(got[level], want[level], atol=1e-5)


def test_the_detection_example_takes_converted_weights(converted):
  example = os.path.join(
      conftest.REPO, 'univision/configs/experiments/retinanet/'
      'composites_mnv4_timm_conv_medium_retinanet_cpu.yaml')
  params = config_parsing.parse_experiment('mnv4_retinanet_composites',
                                           [example])
  want = timm_cli.finetune_overrides('MobileNetV4ConvMedium', 1000, '/ckpt',
                                     detection=True)['task']
  task = params.task
  assert task.init_checkpoint_modules == want['init_checkpoint_modules']
  backbone = task.model.backbone.mobilenet_v4.as_dict()
  assert {k: backbone[k] for k in want['model']['backbone']['mobilenet_v4']
          } == want['model']['backbone']['mobilenet_v4']
  assert task.model.norm_activation.norm_epsilon == (
      want['model']['norm_activation']['norm_epsilon'])
  # The same keys on the converted Conv-S checkpoint: it loads.
  params = config_parsing.parse_experiment(
      'mnv4_retinanet_composites', [example],
      'task.model.backbone.mobilenet_v4.model_id=MobileNetV4ConvSmall,'
      f'task.init_checkpoint={converted["out"]}/init_checkpoint,'
      'task.model.input_size=[64,64,3]')
  detector_task = task_factory.get_task(params.task)
  detector = detector_task.build_model()
  detector_task.initialize(detector)


@pytest.mark.parametrize('model_id', ['MobileNetV4ConvAAMedium',
                                      'MobileNetV4ConvBlurMedium',
                                      'MobileNetV4HybridMedium075'])
def test_other_timm_variants_are_ssdlite_backbones_from_the_example(model_id):
  params = config_parsing.parse_experiment(
      'mnv4_ssdlite_composites',
      [os.path.join(conftest.REPO, 'univision/configs/experiments/retinanet/'
                    'composites_mnv4_timm_conv_medium_retinanet_cpu.yaml')],
      f'task.model.backbone.mobilenet_v4.model_id={model_id},'
      'task.init_checkpoint=,task.model.input_size=[64,64,3]')
  detector = task_factory.get_task(params.task).build_model()
  outputs = detector(np.zeros([1, 64, 64, 3], np.float32), training=False)
  assert sorted(outputs['cls_outputs']) == ['3', '4', '5', '6']


def test_hiera_weights_become_a_hiera_imagenet_start(tmp_path):
  """Hiera: checkpoint + YAML for `hiera_imagenet`, and a SavedModel."""
  model = test_timm_hiera.random_timm_hiera('hiera_tiny_224', 224)
  path = timm_fixtures.save_safetensors(model, str(tmp_path / 'w.safetensors'))
  written = timm_cli.convert_to_dir('hiera_tiny_224.mae_in1k_ft_in1k', path,
                                    str(tmp_path / 'out'), num_classes=1001)
  params = config_parsing.parse_experiment('hiera_imagenet', [written['yaml']])
  assert params.task.model.backbone.hiera.model_id == 'hiera_tiny'
  assert params.task.init_checkpoint_modules == 'all'
  task = task_factory.get_task(params.task)
  classifier = task.build_model()
  task.initialize(classifier)
  images = _images(seed=7)
  normalized = (images.astype(np.float32) - MEAN) / STD
  want = timm_fixtures.timm_logits(model, normalized)
  np.testing.assert_allclose(
      classifier(normalized, training=False).numpy()[:, 1:], want, atol=1e-4)
  served = tf.saved_model.load(written['saved_model'])
  logits = served.signatures['serving_default'](tf.constant(images))['logits']
  assert logits.shape == (2, 1001)
  assert np.argmax(logits, -1).min() >= 1  # Background class 0 never wins.


def test_hiera_detection_yaml_is_backbone_only_at_224():
  overrides = timm_cli.finetune_overrides('hiera_small', 1000, '/ckpt',
                                          detection=True)
  assert overrides == {'task': {
      'init_checkpoint': '/ckpt', 'init_checkpoint_modules': 'backbone',
      'model': {'backbone': {'type': 'hiera', 'hiera': {
          'model_id': 'hiera_small', 'include_head': False}},
                'input_size': [224, 224, 3]}}}


def test_offline_download_names_the_repository_and_the_flag(monkeypatch):
  timm_fixtures.go_offline(monkeypatch)
  with pytest.raises(hub.HubDownloadError,
                     match=r'timm/mobilenetv4_conv_small\.e2400_r224_in1k .*'
                     r'--safetensors=<a local file>'):
    timm_cli.download_weights('MobileNetV4ConvSmall')


def test_an_imagenet_tag_keeps_model_garden_normalization_exactly():
  # Written to the run's YAML and read back, the mean/std are Model
  # Garden's own constants, so `renormalize` leaves images untouched.
  tag = timm_tags.get_tag('mobilenetv4_conv_small.e2400_r224_in1k')
  assert (tag.mean, tag.std) == timm_tags.IMAGENET
  written = yaml.safe_load(yaml.safe_dump(timm_cli.tag_overrides(tag)))
  preprocessing = written['task']['preprocessing']
  assert tuple(preprocessing['mean_rgb']) == (
      image_normalization.MODEL_GARDEN_MEAN)
  assert tuple(preprocessing['stddev_rgb']) == (
      image_normalization.MODEL_GARDEN_STD)
  images = tf.constant([[[[0.5, -1.0, 2.0]]]])
  assert image_normalization.renormalize(
      images, preprocessing['mean_rgb'],
      preprocessing['stddev_rgb']) is images
