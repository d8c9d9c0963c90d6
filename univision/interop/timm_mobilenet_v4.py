"""timm MobileNetV4 weights (safetensors) into univision's Keras model.

timm (`timm/models/mobilenetv3.py`, `_efficientnet_blocks.py`) holds the only
public ImageNet weights of MobileNetV4. This module maps a timm state dict,
read from a `.safetensors` file with numpy (no torch, no pickle), onto a
univision `ClassificationModel` built with the conventions timm's weights
were trained with: PyTorch-style `symmetric` padding and BN epsilon 1e-5.

Name mapping (timm -> univision), in the order of the block-spec table:

| timm                          | univision                                 |
|-------------------------------|-------------------------------------------|
| conv_stem, bn1                | backbone block 0 (stem ConvNormAct)       |
| blocks.s.i (conv, bn1)        | ConvNormAct block                         |
| blocks.s.i (conv_exp, bn1, conv_pwl, bn2) | FusedInvertedBottleneck       |
| blocks.s.i (dw_start, pw_exp, dw_mid, pw_proj, layer_scale) | UIB         |
| blocks.s.i (norm, attn.{query,key,value,output}, layer_scale) | Mobile MQA |
| last block (1x1 conv to 960)  | head_conv                                 |
| conv_head, norm_head          | head_embedding                            |
| classifier                    | the classifier Dense                      |

Conv kernels go from PyTorch's (out, in, kh, kw) to Keras' (kh, kw, in, out);
depthwise kernels from (channels, 1, kh, kw) to (kh, kw, channels, 1).
"""
from collections.abc import Mapping

import numpy as np
import tf_keras
from official.vision.modeling import classification_model

from univision.interop import timm_state_dict
from univision.interop import timm_tags
from univision.modeling import classifiers
from univision.modeling.layers import conv_norm
from univision.modeling.layers import fused_ib
from univision.modeling.layers import mobile_mqa
from univision.modeling.layers import uib

TIMM_NORM_EPSILON = 1e-5
TIMM_PADDING = 'symmetric'
TIMM_NUM_CLASSES = 1000
# timm architecture name -> univision model id.
TIMM_NAMES = {
    'mobilenetv4_conv_small': 'MobileNetV4ConvSmall',
    'mobilenetv4_conv_medium': 'MobileNetV4ConvMedium',
    'mobilenetv4_conv_large': 'MobileNetV4ConvLarge',
    'mobilenetv4_hybrid_medium': 'MobileNetV4HybridMedium',
    'mobilenetv4_hybrid_large': 'MobileNetV4HybridLarge',
    'mobilenetv4_conv_small_035': 'MobileNetV4ConvSmall035',
    'mobilenetv4_conv_small_050': 'MobileNetV4ConvSmall050',
    'mobilenetv4_hybrid_medium_075': 'MobileNetV4HybridMedium075',
    'mobilenetv4_hybrid_large_075': 'MobileNetV4HybridLarge075',
    'mobilenetv4_conv_aa_medium': 'MobileNetV4ConvAAMedium',
    'mobilenetv4_conv_blur_medium': 'MobileNetV4ConvBlurMedium',
    'mobilenetv4_conv_aa_large': 'MobileNetV4ConvAALarge',
}
# The ImageNet-1k weights timm publishes for each model (Hugging Face repo).
TIMM_HUB_WEIGHTS = {
    'MobileNetV4ConvSmall': 'timm/mobilenetv4_conv_small.e2400_r224_in1k',
    'MobileNetV4ConvMedium': 'timm/mobilenetv4_conv_medium.e500_r256_in1k',
    'MobileNetV4ConvLarge': 'timm/mobilenetv4_conv_large.e600_r384_in1k',
    'MobileNetV4HybridMedium':
        'timm/mobilenetv4_hybrid_medium.ix_e550_r256_in1k',
    'MobileNetV4HybridLarge': 'timm/mobilenetv4_hybrid_large.ix_e600_r384_in1k',
    'MobileNetV4ConvSmall050': 'timm/mobilenetv4_conv_small_050.e3000_r224_in1k',
    'MobileNetV4ConvBlurMedium':
        'timm/mobilenetv4_conv_blur_medium.e500_r224_in1k',
    'MobileNetV4ConvAALarge': 'timm/mobilenetv4_conv_aa_large.e600_r384_in1k',
}
_IGNORED_SUFFIX = '.num_batches_tracked'
Assignment = timm_state_dict.Assignment


def _conv_kernel(w: np.ndarray) -> np.ndarray:
  return np.transpose(w, (2, 3, 1, 0))


def _depthwise_kernel(w: np.ndarray) -> np.ndarray:
  return np.transpose(w, (2, 3, 0, 1))


def _same(w: np.ndarray) -> np.ndarray:
  return w


def _norm(norm: tf_keras.layers.BatchNormalization,
          prefix: str) -> list[Assignment]:
  return [Assignment(norm.gamma, f'{prefix}.weight', _same),
          Assignment(norm.beta, f'{prefix}.bias', _same),
          Assignment(norm.moving_mean, f'{prefix}.running_mean', _same),
          Assignment(norm.moving_variance, f'{prefix}.running_var', _same)]


def _conv(conv: tf_keras.layers.Layer, key: str) -> Assignment:
  if isinstance(conv, tf_keras.layers.DepthwiseConv2D):
    return Assignment(conv.depthwise_kernel, key, _depthwise_kernel)
  return Assignment(conv.kernel, key, _conv_kernel)


def _conv_norm(layer: conv_norm.ConvNormAct, conv_key: str,
               norm_prefix: str) -> list[Assignment]:
  return [_conv(layer.conv, conv_key), *_norm(layer.norm, norm_prefix)]


def _timm_conv_norm(layer: conv_norm.ConvNormAct,
                    prefix: str) -> list[Assignment]:
  """timm's `ConvNormAct` module: `<prefix>.conv`, `<prefix>.bn`."""
  return _conv_norm(layer, f'{prefix}.conv.weight', f'{prefix}.bn')


def _layer_scale(block, prefix: str) -> list[Assignment]:
  if block.layer_scale is None:
    return []
  return [Assignment(block.layer_scale.gamma, f'{prefix}.layer_scale.gamma',
                     _same)]


def _block(block: tf_keras.layers.Layer, prefix: str) -> list[Assignment]:
  """Assignments of one body block from timm's `blocks.s.i` module."""
  if isinstance(block, conv_norm.ConvNormAct):
    return _conv_norm(block, f'{prefix}.conv.weight', f'{prefix}.bn1')
  if isinstance(block, fused_ib.FusedInvertedBottleneck):
    return [*_conv_norm(block.expand, f'{prefix}.conv_exp.weight',
                        f'{prefix}.bn1'),
            *_conv_norm(block.project, f'{prefix}.conv_pwl.weight',
                        f'{prefix}.bn2')]
  if isinstance(block, uib.UniversalInvertedBottleneck):
    parts = [(block.start_dw, 'dw_start'), (block.expand, 'pw_exp'),
             (block.middle_dw, 'dw_mid'), (block.project, 'pw_proj')]
    return [a for layer, name in parts if layer is not None
            for a in _timm_conv_norm(layer, f'{prefix}.{name}')
            ] + _layer_scale(block, prefix)
  if isinstance(block, mobile_mqa.MobileMQABlock):
    attn, p = block.attention, f'{prefix}.attn'
    found = [*_norm(block.norm, f'{prefix}.norm'),
             _conv(attn.query_proj, f'{p}.query.proj.weight'),
             _conv(attn.key_proj, f'{p}.key.proj.weight'),
             _conv(attn.value_proj, f'{p}.value.proj.weight'),
             _conv(attn.output_proj, f'{p}.output.proj.weight')]
    for down, name in ((attn.key_down, 'key'), (attn.value_down, 'value')):
      if down is not None:
        found += _conv_norm(down, f'{p}.{name}.down_conv.weight',
                            f'{p}.{name}.norm')
    return found + _layer_scale(block, prefix)
  raise TypeError(f'{prefix}: no timm mapping for {type(block).__name__}.')


def timm_block_prefixes(state_dict: Mapping[str, np.ndarray]) -> list[str]:
  """timm's `blocks.<stage>.<index>` module names, in network order."""
  pairs = {tuple(int(p) for p in key.split('.')[1:3])
           for key in state_dict if key.startswith('blocks.')}
  return [f'blocks.{s}.{i}' for s, i in sorted(pairs)]


def assignments(model: classification_model.ClassificationModel,
                state_dict: Mapping[str, np.ndarray]) -> list[Assignment]:
  """Every variable of `model` paired with its timm tensor.

  Raises:
    ValueError: if timm's block count does not match the model's.
  """
  backbone = model.backbone
  body = backbone.blocks
  prefixes = timm_block_prefixes(state_dict)
  # timm: stem outside `blocks`; the 1x1 conv to 960 is its last block.
  if len(prefixes) != len(body):
    raise ValueError(
        f'The timm weights have {len(prefixes)} blocks plus the stem; '
        f'{backbone.get_config()["model_id"]} has {len(body) - 1}. Is this '
        'the right model_id?')
  found = _conv_norm(body[0], 'conv_stem.weight', 'bn1')
  for block, prefix in zip(body[1:], prefixes[:-1]):
    found += _block(block, prefix)
  found += _block(backbone.get_layer('head_conv'), prefixes[-1])
  found += _conv_norm(backbone.get_layer('head_embedding'),
                      'conv_head.weight', 'norm_head')
  dense = model.layers[-1]
  found += [Assignment(dense.kernel, 'classifier.weight', np.transpose),
            Assignment(dense.bias, 'classifier.bias', _same)]
  return found


def load_timm_weights(model: classification_model.ClassificationModel,
                      state_dict: Mapping[str, np.ndarray]) -> None:
  """Assigns a timm MobileNetV4 state dict to a univision classifier.

  Args:
    model: A `ClassificationModel` on a `MobileNetV4` backbone with timm's
      number of classes, or one more (Model Garden's ImageNet labels
      1..1000; class 0 gets zero weights and a -1e4 bias).
    state_dict: timm tensor names to numpy arrays.

  Raises:
    ValueError: listing every missing, unused or mis-shaped tensor, or if
      the class counts do not fit.
  """
  state_dict = timm_state_dict.fit_class_count(
      state_dict, model.layers[-1].units, 'classifier')
  timm_state_dict.assign_checked(
      model, assignments(model, state_dict), state_dict,
      model.backbone.get_config()['model_id'],
      ignored_suffixes=(_IGNORED_SUFFIX,))


def resolve_model_id(name: str) -> str:
  """univision's model id of a timm name (with or without a tag) or an id.

  Raises:
    ValueError: for a timm name with a tag timm does not publish (listing
      the known tags, `timm_tags.get_tag`).
  """
  if '.' in name:
    timm_tags.get_tag(name)
  return TIMM_NAMES.get(name.split('.')[0], name)


def build_timm_compatible_classifier(
    model_id: str, num_classes: int = TIMM_NUM_CLASSES,
    input_shape: tuple[int | None, int | None] = (None, None)
) -> classification_model.ClassificationModel:
  """A univision classifier laid out and padded like timm's MobileNetV4."""
  return classifiers.mobilenet_v4_classifier(
      resolve_model_id(model_id), num_classes, input_shape,
      padding=TIMM_PADDING, norm_epsilon=TIMM_NORM_EPSILON)


def convert(model_id: str, safetensors_path: str,
            num_classes: int = TIMM_NUM_CLASSES
            ) -> classification_model.ClassificationModel:
  """Builds the model and loads timm's weights from a safetensors file."""
  model = build_timm_compatible_classifier(model_id, num_classes)
  load_timm_weights(model,
                    timm_state_dict.read_safetensors(safetensors_path))
  return model
