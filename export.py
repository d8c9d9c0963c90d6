"""Exports a trained univision model as a SavedModel.

  python export.py --experiment=mnv4_fashion_mnist --config_file=<yaml> \
    --checkpoint_path=runs/demo --export_dir=runs/demo/export \
    --input_type=image_bytes --input_image_size=64,64

Uses Model Garden's export library and its serving modules, so the
SavedModel's `serving_default` signature follows Model Garden's conventions
(`--input_type`: `image_tensor` uint8 [batch, h, w, 3], `image_bytes` encoded
images, `tf_example` serialized examples, or `tflite`). `--checkpoint_path`
may be a checkpoint or a training `--model_dir` (its latest checkpoint).
"""
import types

from absl import app
from absl import flags

import univision  # pylint: disable=unused-import  (sets the Keras mode)
import tensorflow as tf, tf_keras
from official.vision.serving import export_saved_model_lib

from univision import registry_imports  # pylint: disable=unused-import
from univision.core import config_parsing

_EXPERIMENT = flags.DEFINE_string('experiment', None, 'Registered experiment.')
_CONFIG_FILE = flags.DEFINE_multi_string('config_file', None,
                                         'YAML overrides, applied in order.')
_PARAMS_OVERRIDE = flags.DEFINE_string('params_override', '',
                                       'Final YAML/JSON/CSV overrides.')
_CHECKPOINT_PATH = flags.DEFINE_string(
    'checkpoint_path', None, 'A checkpoint, or a folder of checkpoints.')
_EXPORT_DIR = flags.DEFINE_string('export_dir', None, 'Output folder.')
_INPUT_TYPE = flags.DEFINE_enum(
    'input_type', 'image_tensor',
    ['image_tensor', 'image_bytes', 'tf_example', 'tflite'],
    'Serving input type.')
_INPUT_IMAGE_SIZE = flags.DEFINE_list('input_image_size', None,
                                      'height,width; default: the model size.')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', None,
                                   'Fixed batch size, or None for dynamic.')


def resolve_checkpoint(path: str) -> str:
  """A checkpoint prefix from a checkpoint or a folder, or a clear error."""
  if tf.io.gfile.isdir(path):
    latest = tf.train.latest_checkpoint(path)
    if latest is None:
      raise FileNotFoundError(f'--checkpoint_path={path}: no checkpoint in '
                              'this folder.')
    return latest
  if not tf.io.gfile.exists(path + '.index'):
    raise FileNotFoundError(f'--checkpoint_path={path}: no such checkpoint.')
  return path


def export(experiment: str, config_files: list[str] | None,
           params_override: str, checkpoint_path: str, export_dir: str,
           input_type: str = 'image_tensor',
           input_image_size: list[int] | None = None,
           batch_size: int | None = None) -> str:
  """Exports the SavedModel; returns its folder."""
  params = config_parsing.parse_configuration(types.SimpleNamespace(
      experiment=experiment, config_file=config_files,
      params_override=params_override, tpu='', tf_data_service=None))
  size = input_image_size or params.task.model.input_size[:2]
  export_saved_model_lib.export_inference_graph(
      input_type=input_type,
      batch_size=batch_size,
      input_image_size=[int(s) for s in size],
      params=params,
      checkpoint_path=resolve_checkpoint(checkpoint_path),
      export_dir=export_dir,
      export_checkpoint_subdir='checkpoint',
      export_saved_model_subdir='saved_model')
  return f'{export_dir}/saved_model'


def main(_):
  saved_model = export(_EXPERIMENT.value, _CONFIG_FILE.value,
                       _PARAMS_OVERRIDE.value, _CHECKPOINT_PATH.value,
                       _EXPORT_DIR.value, _INPUT_TYPE.value,
                       _INPUT_IMAGE_SIZE.value, _BATCH_SIZE.value)
  print(f'SavedModel:       {saved_model}')


if __name__ == '__main__':
  flags.mark_flags_as_required(['experiment', 'checkpoint_path', 'export_dir'])
  app.run(main)
