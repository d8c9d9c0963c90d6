"""timm Hiera weights (state dict / safetensors) into univision's Keras model.

timm (`timm/models/hiera.py`) republishes the official Hiera ImageNet-1k and
MAE weights (`hiera_*_224.mae_in1k_ft_in1k`, CC-BY-NC). This module maps a
timm state dict of numpy arrays onto a Model Garden `ClassificationModel`
around univision's `Hiera` backbone. The backbone's layers keep timm's token
and channel layouts (raster position embedding, qkv as [q | k | v] x heads),
so only Linear and conv kernels change layout.

Name mapping (timm -> univision):

| timm                     | univision                                |
|--------------------------|------------------------------------------|
| patch_embed.proj         | backbone patch_embed.conv                |
| pos_embed                | backbone patch_embed.pos_embed           |
| blocks.i.norm1, .norm2   | block i: norm1, norm2                    |
| blocks.i.proj            | block i: proj (only where width changes) |
| blocks.i.attn.qkv, .proj | block i: attn.qkv, attn.proj             |
| blocks.i.mlp.fc1, .fc2   | block i: fc1, fc2                        |
| head.norm                | backbone head_norm (endpoint '6')        |
| head.fc                  | the classifier Dense                     |

Linear weights go from PyTorch's (out, in) to Keras' (in, out); the conv
kernel from (out, in, kh, kw) to (kh, kw, in, out). The position embedding
is tied to the input size: weights for 224 px load only into a 224 px model.
"""
from collections.abc import Mapping

import numpy as np
import tf_keras
from official.vision.modeling import classification_model

from univision.interop import timm_state_dict
from univision.modeling import classifiers
from univision.modeling.backbones import hiera
from univision.modeling.layers import hiera_blocks

Assignment = timm_state_dict.Assignment

TIMM_NUM_CLASSES = 1000
TIMM_IMAGE_SIZE = 224
# timm architecture name -> univision model id.
TIMM_NAMES = {f'{model_id}_224': model_id
              for model_id in hiera.specs.MODEL_SPECS}
# timm's ImageNet-1k classifiers: MAE-pretrained, fine-tuned (CC-BY-NC).
TIMM_HUB_WEIGHTS = {model_id: f'timm/{model_id}_224.mae_in1k_ft_in1k'
                    for model_id in hiera.specs.MODEL_SPECS}


def _same(w: np.ndarray) -> np.ndarray:
  return w


def _conv_kernel(w: np.ndarray) -> np.ndarray:
  return np.transpose(w, (2, 3, 1, 0))


def _dense(layer: tf_keras.layers.Dense, prefix: str) -> list[Assignment]:
  return [Assignment(layer.kernel, f'{prefix}.weight', np.transpose),
          Assignment(layer.bias, f'{prefix}.bias', _same)]


def _norm(layer: tf_keras.layers.LayerNormalization,
          prefix: str) -> list[Assignment]:
  return [Assignment(layer.gamma, f'{prefix}.weight', _same),
          Assignment(layer.beta, f'{prefix}.bias', _same)]


def _block(block: hiera_blocks.HieraBlock, prefix: str) -> list[Assignment]:
  found = [*_norm(block.norm1, f'{prefix}.norm1'),
           *_dense(block.attn.qkv, f'{prefix}.attn.qkv'),
           *_dense(block.attn.proj, f'{prefix}.attn.proj'),
           *_norm(block.norm2, f'{prefix}.norm2'),
           *_dense(block.fc1, f'{prefix}.mlp.fc1'),
           *_dense(block.fc2, f'{prefix}.mlp.fc2')]
  if block.proj is not None:
    found += _dense(block.proj, f'{prefix}.proj')
  return found


def assignments(model: classification_model.ClassificationModel
                ) -> list[Assignment]:
  """Every variable of `model` paired with its timm tensor name."""
  backbone = model.backbone
  embed = backbone.get_layer('patch_embed')
  found = [Assignment(embed.conv.kernel, 'patch_embed.proj.weight',
                      _conv_kernel),
           Assignment(embed.conv.bias, 'patch_embed.proj.bias', _same),
           Assignment(embed.pos_embed, 'pos_embed', _same)]
  for index, block in enumerate(backbone.blocks):
    found += _block(block, f'blocks.{index}')
  found += _norm(backbone.get_layer('head_norm'), 'head.norm')
  found += _dense(model.layers[-1], 'head.fc')
  return found


def load_timm_weights(model: classification_model.ClassificationModel,
                      state_dict: Mapping[str, np.ndarray]) -> None:
  """Assigns a timm Hiera state dict to a univision classifier.

  Args:
    model: A `ClassificationModel` on a `Hiera` backbone (with its head) of
      timm's input size, with timm's number of classes or one more (Model
      Garden's ImageNet labels 1..1000; class 0 gets zero weights and a
      -1e4 bias).
    state_dict: timm tensor names to numpy arrays.

  Raises:
    ValueError: if the block or class counts do not fit, or listing every
      missing, unused or mis-shaped tensor.
  """
  state_dict = timm_state_dict.fit_class_count(
      state_dict, model.layers[-1].units, 'head.fc')
  timm_blocks = len({key.split('.')[1] for key in state_dict
                      if key.startswith('blocks.')})
  model_id = model.backbone.get_config()['model_id']
  if timm_blocks != len(model.backbone.blocks):
    raise ValueError(f'The timm weights have {timm_blocks} blocks, {model_id} '
                     f'has {len(model.backbone.blocks)}. Is this the right '
                     'model_id?')
  timm_state_dict.assign_checked(
      model, assignments(model), state_dict, model_id,
      shape_hints={'pos_embed': 'another image size'})


def resolve_model_id(name: str) -> str:
  """A univision model id from itself or from timm's architecture name."""
  return TIMM_NAMES.get(name.split('.')[0], name)


def build_timm_compatible_classifier(
    model_id: str, num_classes: int = TIMM_NUM_CLASSES,
    image_size: int = TIMM_IMAGE_SIZE
) -> classification_model.ClassificationModel:
  """A univision classifier laid out like timm's Hiera at `image_size`."""
  return classifiers.classifier(
      lambda input_specs: hiera.Hiera(resolve_model_id(model_id),
                                      input_specs=input_specs),
      num_classes, (image_size, image_size))


def convert(model_id: str, safetensors_path: str,
            num_classes: int = TIMM_NUM_CLASSES,
            image_size: int = TIMM_IMAGE_SIZE
            ) -> classification_model.ClassificationModel:
  """Builds the model and loads timm's weights from a safetensors file."""
  model = build_timm_compatible_classifier(model_id, num_classes, image_size)
  load_timm_weights(model,
                    timm_state_dict.read_safetensors(safetensors_path))
  return model
