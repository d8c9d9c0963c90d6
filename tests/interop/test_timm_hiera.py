"""univision's Hiera equals timm's on the same (converted) weights."""
import numpy as np
import pytest
from safetensors.torch import save_file
import timm
import torch
import tf_keras
from official.vision.modeling import classification_model

from univision.efficiency import counting
from univision.interop import timm_hiera
from univision.modeling.backbones import hiera
from univision.modeling.layers import hiera_tokens

# tests/conftest.py imports timm before TensorFlow and sets HF_HUB_OFFLINE:
# the timm models here are built with random weights, nothing is downloaded.


def random_timm_hiera(name: str, image_size: int, seed: int = 0, **kwargs):
  """A timm Hiera in eval mode with weights that make every part matter.

  At init LayerNorms are the identity and the classifier is scaled by 1e-3;
  here norms, biases and the classifier are randomized too.
  """
  torch.manual_seed(seed)
  model = timm.create_model(name, pretrained=False, img_size=image_size,
                            **kwargs)
  with torch.no_grad():
    for param_name, param in model.named_parameters():
      if 'norm' in param_name:
        if param_name.endswith('weight'):
          param.uniform_(0.5, 1.5)
        else:
          param.uniform_(-0.2, 0.2)
      elif param_name.startswith('head.fc'):
        param.normal_(0.0, 0.05)
      elif param_name.endswith('bias'):
        param.normal_(0.0, 0.02)
  return model.eval()


def _state_dict(model) -> dict[str, np.ndarray]:
  return {k: v.numpy() for k, v in model.state_dict().items()}


def _nchw(images: np.ndarray) -> torch.Tensor:
  return torch.from_numpy(images.transpose(0, 3, 1, 2))


def _images(size: int, batch: int = 2, seed: int = 1) -> np.ndarray:
  return np.random.default_rng(seed).normal(
      size=(batch, size, size, 3)).astype(np.float32)


def _converted(model, image_size: int, num_classes: int = 1000,
               **backbone_kwargs):
  """univision's classifier with `model`'s weights."""
  input_specs = tf_keras.layers.InputSpec(
      shape=[None, image_size, image_size, 3])
  backbone = hiera.Hiera(input_specs=input_specs, **backbone_kwargs)
  converted = classification_model.ClassificationModel(
      backbone, num_classes, input_specs=input_specs)
  timm_hiera.load_timm_weights(converted, _state_dict(model))
  return converted


@pytest.fixture(scope='module')
def tiny_64():
  """timm's hiera_tiny at 64 px and univision's copy of it."""
  model = random_timm_hiera('hiera_tiny_224', 64)
  return model, _converted(model, 64, model_id='hiera_tiny')


@pytest.mark.parametrize('name,image_size', [
    ('hiera_tiny_224', 224), ('hiera_base_plus_224', 128)])
def test_logits_match_timm(name, image_size):
  model = random_timm_hiera(name, image_size)
  converted = timm_hiera.build_timm_compatible_classifier(
      name, image_size=image_size)
  timm_hiera.load_timm_weights(converted, _state_dict(model))
  images = _images(image_size)
  with torch.no_grad():
    want = model(_nchw(images)).numpy()
  got = converted(images, training=False).numpy()
  assert np.abs(want).max() > 0.5  # Logits are not degenerate.
  np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_small_input_logits_and_stage_maps_match_timm(tiny_64):
  model, converted = tiny_64
  images = _images(64)
  with torch.no_grad():
    want_logits = model(_nchw(images)).numpy()
    want_maps = model.forward_intermediates(
        _nchw(images), output_fmt='NHWC', intermediates_only=True)
  np.testing.assert_allclose(converted(images, training=False).numpy(),
                             want_logits, atol=1e-4, rtol=0)
  got = converted.backbone(images)
  for level, maps in zip('2345', want_maps):
    assert got[level].shape == tuple(maps.shape)
    np.testing.assert_allclose(got[level].numpy(), maps.numpy(), atol=1e-4)


def test_parameter_count_equals_timm(tiny_64):
  model, converted = tiny_64
  assert counting.count_params(converted) == sum(
      p.numel() for p in model.parameters())


def _check_masked_units(model, backbone, images, keep):
  """Kept-unit features vs timm's masked intermediates [B, K, u, u, C]."""
  with torch.no_grad():
    _, want = model.forward_features(
        _nchw(images), mask=torch.from_numpy(keep.numpy()),
        return_intermediates=True)
  got = backbone(images, keep_mask=keep)
  for level, units in zip('2345', want):
    assert got[level].shape == tuple(units.shape)
    np.testing.assert_allclose(got[level].numpy(), units.numpy(), atol=1e-4)
  return got


def test_masked_units_match_timm(tiny_64):
  model, converted = tiny_64
  keep = hiera_tokens.random_keep_mask(2, 4, 0.5, seed=3)
  got = _check_masked_units(model, converted.backbone, _images(64), keep)
  assert got['2'].shape == (2, 2, 8, 8, 96)


def test_mae_encoder_q_pool_2_matches_timm():
  """q_pool=2 (the MAE encoder): dense stage maps and masked units."""
  model = random_timm_hiera('hiera_tiny_224', 128, q_pool=2)
  backbone = _converted(model, 128, model_id='hiera_tiny', q_pool=2).backbone
  images = _images(128)
  with torch.no_grad():
    want = model.forward_intermediates(_nchw(images), output_fmt='NHWC',
                                       intermediates_only=True)
  got = backbone(images)
  for level, maps in zip('2345', want):
    np.testing.assert_allclose(got[level].numpy(), maps.numpy(), atol=1e-4)
  keep = hiera_tokens.random_keep_mask(2, 16, 0.6, seed=4)
  units = _check_masked_units(model, backbone, images, keep)
  assert units['5'].shape == (2, int(16 * 0.4), 2, 2, 768)


def test_convert_from_safetensors_with_background_class(tiny_64, tmp_path):
  model, _ = tiny_64
  path = str(tmp_path / 'hiera_tiny.safetensors')
  save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)
  converted = timm_hiera.convert('hiera_tiny_224', path, num_classes=1001,
                                 image_size=64)
  images = _images(64)
  got = converted(images, training=False).numpy()
  with torch.no_grad():
    want = model(_nchw(images)).numpy()
  np.testing.assert_allclose(got[:, 1:], want, atol=1e-4)
  assert (got[:, 0] < -1e3).all()


def test_wrong_model_or_size_is_rejected(tiny_64):
  tensors = _state_dict(tiny_64[0])
  small = timm_hiera.build_timm_compatible_classifier('hiera_small',
                                                      image_size=64)
  with pytest.raises(ValueError, match='12 blocks, hiera_small has 16.*'
                     'right model_id'):
    timm_hiera.load_timm_weights(small, tensors)
  tiny_224 = timm_hiera.build_timm_compatible_classifier('hiera_tiny')
  with pytest.raises(ValueError, match=r'shape mismatch: pos_embed '
                     r'\(1, 256, 96\).*\(1, 3136, 96\) \(another image size\)'):
    timm_hiera.load_timm_weights(tiny_224, tensors)


def test_renamed_and_reshaped_tensors_are_listed(tiny_64):
  model, converted = tiny_64
  tensors = _state_dict(model)
  tensors['blocks.3.attn.qkv.weight_renamed'] = tensors.pop(
      'blocks.3.attn.qkv.weight')
  tensors['head.norm.weight'] = tensors['head.norm.weight'][:100]
  with pytest.raises(ValueError) as error:
    timm_hiera.load_timm_weights(converted, tensors)
  message = str(error.value)
  assert 'missing in timm weights: blocks.3.attn.qkv.weight' in message
  assert 'unused timm tensor: blocks.3.attn.qkv.weight_renamed' in message
  assert 'shape mismatch: head.norm.weight (100,)' in message


def test_class_count_mismatch_is_explained(tiny_64):
  model = timm_hiera.build_timm_compatible_classifier(
      'hiera_tiny', num_classes=10, image_size=64)
  with pytest.raises(ValueError, match='10 classes.*use 1000 or 1001'):
    timm_hiera.load_timm_weights(model, _state_dict(tiny_64[0]))


def test_timm_names_resolve():
  assert timm_hiera.resolve_model_id(
      'hiera_base_plus_224.mae_in1k_ft_in1k') == 'hiera_base_plus'
  assert timm_hiera.resolve_model_id('hiera_large') == 'hiera_large'
