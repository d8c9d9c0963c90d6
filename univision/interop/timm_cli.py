"""Converts timm's MobileNetV4 or Hiera ImageNet weights to a TF checkpoint.

  python -m univision.interop.timm_cli --model=mobilenetv4_conv_small \
    --safetensors=model.safetensors --output_dir=weights/mnv4_conv_small

  # With internet: fetch timm's published weights from the Hugging Face hub.
  python -m univision.interop.timm_cli --model=MobileNetV4HybridMedium \
    --download --output_dir=weights/mnv4_hybrid_medium
  python -m univision.interop.timm_cli --model=hiera_base_224 \
    --download --output_dir=weights/hiera_base

`--model` is a univision model id (`MobileNetV4ConvSmall`, `hiera_base`, ...)
or timm's architecture name (`mobilenetv4_conv_small`, `hiera_base_224`, with
or without a `.tag`). The download takes timm's ImageNet-1k classifier: for
Hiera the MAE-pretrained, ImageNet-1k fine-tuned one (`.mae_in1k_ft_in1k`,
CC-BY-NC weights).

Writes, under `--output_dir`:
  init_checkpoint/  a TF checkpoint usable as `task.init_checkpoint` (with
                  `init_checkpoint_modules` `all` or `backbone`);
  timm_weights.yaml  the config overrides the weights need (backbone and
                  model id, init_checkpoint; MobileNetV4: symmetric padding
                  and BN epsilon 1e-5; Hiera: 224 px input): pass it as a
                  further `--config_file` after any recipe YAML of
                  `mnv4_imagenet` / `hiera_imagenet` (or another dataset);
  timm_weights_detection.yaml  the same for a detector (RetinaNet/SSDLite):
                  backbone only, no classification head, no class count;
  saved_model/    a SavedModel (Model Garden serving signature, uint8 images).
No torch is needed; the file is read with the numpy safetensors backend.
"""
import copy
import dataclasses
import os
import types
from collections.abc import Callable

from absl import app
from absl import flags
import yaml

import univision  # pylint: disable=unused-import  (sets the Keras mode)
import tensorflow as tf, tf_keras

from univision.interop import hub
from univision.interop import timm_hiera
from univision.interop import timm_mobilenet_v4
from univision.modeling.backbones import hiera_specs
from univision.modeling.backbones import mobilenet_v4_specs
from univision.serving import saved_model


TIMM_HUB_WEIGHTS = {**timm_mobilenet_v4.TIMM_HUB_WEIGHTS,
                    **timm_hiera.TIMM_HUB_WEIGHTS}


@dataclasses.dataclass(frozen=True)
class _Family:
  """What differs between the architectures the command converts."""
  experiment: str  # The ImageNet classification experiment of the YAML.
  backbone_type: str
  converter: types.ModuleType  # convert(model_id, path, num_classes).
  resolution: Callable[[str], int]  # timm's input size of a model id.
  backbone_settings: dict[str, object]  # What timm's weights need, ...
  model_settings: dict[str, object]  # ... in the backbone and the model.


_MOBILENET_V4 = _Family(
    'mnv4_imagenet', 'mobilenet_v4', timm_mobilenet_v4,
    lambda model_id: mobilenet_v4_specs.MODEL_SPECS[model_id].resolution,
    backbone_settings={'padding': timm_mobilenet_v4.TIMM_PADDING},
    model_settings={'norm_activation': {
        'norm_epsilon': timm_mobilenet_v4.TIMM_NORM_EPSILON}})
_HIERA = _Family(
    'hiera_imagenet', 'hiera', timm_hiera,
    lambda _: timm_hiera.TIMM_IMAGE_SIZE, backbone_settings={},
    # The position embedding is tied to timm's input size.
    model_settings={'input_size': [timm_hiera.TIMM_IMAGE_SIZE,
                                   timm_hiera.TIMM_IMAGE_SIZE, 3]})


def resolve(model: str) -> tuple[str, _Family]:
  """The univision model id of a `--model` value, and its family.

  Raises:
    ValueError: naming `--model` and every known id, if it is neither.
  """
  hiera_id = timm_hiera.resolve_model_id(model)
  if hiera_id in hiera_specs.MODEL_SPECS:
    return hiera_id, _HIERA
  model_id = timm_mobilenet_v4.resolve_model_id(model)
  if model_id in mobilenet_v4_specs.MODEL_SPECS:
    return model_id, _MOBILENET_V4
  known = [*mobilenet_v4_specs.MODEL_SPECS, *hiera_specs.MODEL_SPECS]
  raise ValueError(f'--model={model!r} is neither a MobileNetV4 nor a Hiera '
                   f'model; known ids: {", ".join(known)} (or their timm '
                   'names).')


def download_weights(model_id: str) -> str:
  """Path of timm's `model.safetensors` for `model_id`, fetched if needed.

  Raises:
    ValueError: naming the model if timm publishes no weights for it.
  """
  if model_id not in TIMM_HUB_WEIGHTS:
    raise ValueError(f'timm publishes no pretrained weights for {model_id} '
                     f'(known: {", ".join(sorted(TIMM_HUB_WEIGHTS))}); pass '
                     '--safetensors=<a local file> instead.')
  return hub.download_safetensors(TIMM_HUB_WEIGHTS[model_id],
                                  '--safetensors=<a local file>')


def finetune_overrides(model_id: str, num_classes: int,
                       checkpoint_dir: str, detection: bool = False) -> dict:
  """The config keys a run must set to start from the converted weights.

  For a detector (`detection`) only the backbone is initialised, and it is
  built without its classification head (levels 3-5 are all it uses).
  """
  _, family = resolve(model_id)
  backbone = {'model_id': model_id, **family.backbone_settings}
  model = {'backbone': {'type': family.backbone_type,
                        family.backbone_type: backbone},
           **copy.deepcopy(family.model_settings)}
  task = {'init_checkpoint': checkpoint_dir, 'model': model}
  if detection:
    backbone['include_head'] = False
    task['init_checkpoint_modules'] = 'backbone'
  else:
    model['num_classes'] = num_classes
    task['init_checkpoint_modules'] = 'all'
  return {'task': task}


def convert_to_dir(model: str, safetensors_path: str, output_dir: str,
                   num_classes: int = 1000,
                   export_saved_model: bool = True) -> dict[str, str]:
  """Converts timm weights; writes checkpoint, YAML and SavedModel.

  Returns:
    Paths of what was written: 'checkpoint', 'yaml', 'detection_yaml' and
    'saved_model'.
  """
  model_id, family = resolve(model)
  keras_model = family.converter.convert(model_id, safetensors_path,
                                         num_classes)
  checkpoint_dir = os.path.join(output_dir, 'init_checkpoint')
  checkpoint = tf.train.Checkpoint(model=keras_model,
                                   backbone=keras_model.backbone)
  written = {'checkpoint': checkpoint.save(os.path.join(checkpoint_dir,
                                                        'ckpt'))}
  for key, name, detection in (('yaml', 'timm_weights.yaml', False),
                                ('detection_yaml',
                                 'timm_weights_detection.yaml', True)):
    overrides = finetune_overrides(model_id, num_classes,
                                   os.path.abspath(checkpoint_dir), detection)
    written[key] = os.path.join(output_dir, name)
    with open(written[key], 'w') as f:
      f.write(f'# Start a {"detection " if detection else ""}run from timm '
              'weights: pass this file as a\n# further --config_file after '
              'the recipe YAML.\n')
      yaml.safe_dump(overrides, f, sort_keys=False)
  if export_saved_model:
    resolution = family.resolution(model_id)
    written['saved_model'] = saved_model.export(
        family.experiment, [written['yaml']],
        f'task.model.input_size=[{resolution},{resolution},3]',
        checkpoint_dir, output_dir)
  return written


def _define_flags() -> None:
  flags.DEFINE_string('model', None,
                      'univision model id or timm architecture name.')
  flags.DEFINE_string('safetensors', None, 'A timm .safetensors file.')
  flags.DEFINE_bool(
      'download', False, "Download timm's ImageNet-1k weights for --model "
      'from the Hugging Face hub (needs huggingface_hub and internet).')
  flags.DEFINE_integer(
      'num_classes', 1000, "1000 (timm's labels 0..999) or 1001 (Model "
      "Garden's ImageNet TFRecords, labels 1..1000).")
  flags.DEFINE_string('output_dir', None, 'Output folder.')
  flags.DEFINE_bool('saved_model', True, 'Also export a SavedModel.')
  flags.mark_flags_as_required(['model', 'output_dir'])


def main(_):
  f = flags.FLAGS
  if bool(f.safetensors) == f.download:
    raise app.UsageError('Give exactly one of --safetensors or --download.')
  try:
    path = f.safetensors or download_weights(resolve(f.model)[0])
  except hub.HubDownloadError as e:  # One line, not a traceback.
    raise app.UsageError(str(e)) from e
  written = convert_to_dir(f.model, path, f.output_dir, f.num_classes,
                           f.saved_model)
  for what, where in written.items():
    print(f'{what + ":":13s} {where}')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
