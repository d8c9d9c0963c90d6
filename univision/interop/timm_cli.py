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
or without a `.tag`). A MobileNetV4 tag (`univision.interop.timm_tags`,
e.g. `mobilenetv4_conv_small.e3600_r256_in1k`) fixes the weights
downloaded, the class count (11,821 for the in12k tags) and the
pre-processing the YAML and the SavedModel follow: its test resolution,
centre crop, bicubic resizing, mean and std. Without a tag the download
takes each model's default ImageNet-1k tag (`TIMM_HUB_WEIGHTS`, followed
the same way); a `--safetensors` file without a tag is converted with
ImageNet's mean and std at the model's resolution. For Hiera the download
takes the MAE-pretrained, ImageNet-1k fine-tuned classifier
(`.mae_in1k_ft_in1k`, CC-BY-NC weights).

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
from collections.abc import Callable

from absl import app
from absl import flags
import yaml

import univision  # pylint: disable=unused-import  (sets the Keras mode)
import tensorflow as tf, tf_keras

from univision.interop import create
from univision.interop import hub
from univision.interop import timm_hiera
from univision.interop import timm_mobilenet_v4
from univision.interop import timm_tags
from univision.modeling.backbones import hiera_specs
from univision.modeling.backbones import mobilenet_v4_specs
from univision.serving import saved_model


# What to pass instead of downloading (named in errors).
_LOCAL_WEIGHTS = '--safetensors=<a local file>'
TIMM_HUB_WEIGHTS = {**timm_mobilenet_v4.TIMM_HUB_WEIGHTS,
                    **timm_hiera.TIMM_HUB_WEIGHTS}


@dataclasses.dataclass(frozen=True)
class _Family:
  """What differs between the architectures the command converts."""
  experiment: str  # The ImageNet classification experiment of the YAML.
  backbone_type: str
  convert: Callable[[str, str, int], tf_keras.Model]  # (name, path, classes)
  resolution: Callable[[str], int]  # timm's input size of a model id.
  backbone_settings: dict[str, object]  # What timm's weights need, ...
  model_settings: dict[str, object]  # ... in the backbone and the model.


def _create_mobilenet_v4(name: str, path: str,
                         num_classes: int) -> tf_keras.Model:
  """`univision.create_model` with the file (the command is a thin wrapper).

  `num_classes` 1000 is the file's own count (so an ImageNet-12k file keeps
  its 11,821), 1001 timm's 1000 behind Model Garden's background class.
  """
  return create.create_model(
      name, weights_file=path,
      num_classes=(None if num_classes == timm_mobilenet_v4.TIMM_NUM_CLASSES
                   else num_classes))


_MOBILENET_V4 = _Family(
    'mnv4_imagenet', 'mobilenet_v4', _create_mobilenet_v4,
    lambda model_id: mobilenet_v4_specs.MODEL_SPECS[model_id].resolution,
    backbone_settings={'padding': timm_mobilenet_v4.TIMM_PADDING},
    model_settings={'norm_activation': {
        'norm_epsilon': timm_mobilenet_v4.TIMM_NORM_EPSILON}})
_HIERA = _Family(
    'hiera_imagenet', 'hiera', timm_hiera.convert,
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


def mobilenet_v4_tag(model: str, download: bool) -> timm_tags.Tag | None:
  """The timm tag a `--model` names, or the downloaded default's; else None.

  Raises:
    ValueError: for a tag timm does not publish (listing the known ones).
  """
  model_id, family = resolve(model)
  if family is not _MOBILENET_V4:
    return None
  if '.' in model:
    return timm_tags.get_tag(model)
  if download and model_id in TIMM_HUB_WEIGHTS:
    return timm_tags.get_tag(TIMM_HUB_WEIGHTS[model_id].split('/', 1)[1])
  return None


def download_weights(model: str) -> str:
  """Path of timm's `model.safetensors` for `model`, fetched if needed.

  A MobileNetV4 name with a tag fetches that tag's weights; otherwise the
  model's default (`TIMM_HUB_WEIGHTS`).

  Raises:
    ValueError: naming the model if timm publishes no weights for it.
  """
  model_id, family = resolve(model)
  name = model if family is _MOBILENET_V4 else model_id
  return hub.download_safetensors(
      create.hub_id(name, model_id, _LOCAL_WEIGHTS, TIMM_HUB_WEIGHTS),
      _LOCAL_WEIGHTS)


def tag_overrides(tag: timm_tags.Tag) -> dict:
  """The classifier config keys that give a run `tag`'s pre-processing.

  The mean and std are written unrounded: for an ImageNet-normalized tag
  they are then exactly Model Garden's constants, and
  `image_normalization.renormalize` leaves the images as they are.
  """
  return {'task': {
      'model': {'input_size': [tag.test_size, tag.test_size, 3]},
      'preprocessing': {'mean_rgb': [255 * m for m in tag.mean],
                        'stddev_rgb': [255 * s for s in tag.std]},
      'validation_data': {'aug_crop': True,
                          'center_crop_fraction': tag.test_crop_pct,
                          'tf_resize_method': tag.interpolation}}}


def finetune_overrides(model_id: str, num_classes: int,
                       checkpoint_dir: str, detection: bool = False,
                       tag: timm_tags.Tag | None = None) -> dict:
  """The config keys a run must set to start from the converted weights.

  For a detector (`detection`) only the backbone is initialised, and it is
  built without its classification head (levels 3-5 are all it uses). A
  classifier from a `tag` also gets the tag's pre-processing
  (`tag_overrides`).
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
    if tag is not None:
      from_tag = tag_overrides(tag)['task']
      model.update(from_tag.pop('model'))
      task.update(from_tag)
  return {'task': task}


def convert_to_dir(model: str, safetensors_path: str, output_dir: str,
                   num_classes: int = 1000,
                   export_saved_model: bool = True,
                   tag: timm_tags.Tag | None = None) -> dict[str, str]:
  """Converts timm weights; writes checkpoint, YAML and SavedModel.

  With a `tag` (or a `model` naming one) the YAML and the SavedModel follow
  its pre-processing. MobileNetV4: `num_classes` 1000 keeps the file's
  count (11,821 for an ImageNet-12k file), 1001 adds Model Garden's
  background class (`_create_mobilenet_v4`).

  Returns:
    Paths of what was written: 'checkpoint', 'yaml', 'detection_yaml' and
    'saved_model'.
  """
  model_id, family = resolve(model)
  tag = tag or mobilenet_v4_tag(model, download=False)
  keras_model = family.convert(model, safetensors_path, num_classes)
  num_classes = keras_model.layers[-1].units
  checkpoint_dir = os.path.join(output_dir, 'init_checkpoint')
  checkpoint = tf.train.Checkpoint(model=keras_model,
                                   backbone=keras_model.backbone)
  written = {'checkpoint': checkpoint.save(os.path.join(checkpoint_dir,
                                                        'ckpt'))}
  for key, name, detection in (('yaml', 'timm_weights.yaml', False),
                                ('detection_yaml',
                                 'timm_weights_detection.yaml', True)):
    overrides = finetune_overrides(model_id, num_classes,
                                   os.path.abspath(checkpoint_dir), detection,
                                   tag)
    written[key] = os.path.join(output_dir, name)
    with open(written[key], 'w') as f:
      f.write(f'# Start a {"detection " if detection else ""}run from timm '
              'weights: pass this file as a\n# further --config_file after '
              'the recipe YAML.\n')
      yaml.safe_dump(overrides, f, sort_keys=False)
  if export_saved_model:
    resolution = tag.test_size if tag else family.resolution(model_id)
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
    path = f.safetensors or download_weights(f.model)
  except hub.HubDownloadError as e:  # One line, not a traceback.
    raise app.UsageError(str(e)) from e
  tag = mobilenet_v4_tag(f.model, f.download)
  written = convert_to_dir(f.model, path, f.output_dir, f.num_classes,
                           f.saved_model, tag)
  if tag is not None:
    print(f'{"tag:":13s} {tag.name} ({tag.test_size} px, crop '
          f'{tag.test_crop_pct:g}, mean {tag.mean}, {tag.num_classes} '
          'classes)')
  for what, where in written.items():
    print(f'{what + ":":13s} {where}')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
