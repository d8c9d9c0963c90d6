"""Exports a trained univision model as a SavedModel.

  python export.py --experiment=mnv4_fashion_mnist --config_file=<yaml> \
    --checkpoint_path=runs/demo --export_dir=runs/demo/export \
    --input_type=image_bytes --input_image_size=64,64

Uses Model Garden's export library (see `univision.serving.saved_model`).
`--checkpoint_path` may be a checkpoint or a training `--model_dir` (its
latest checkpoint). A detector for one task of a model-patch study is the
shared base plus that task's patch:

  python export.py --experiment=mnv4_retinanet_composites \
    --checkpoint_path=results/model_patches/base/weights \
    --patch=results/model_patches/patches/tree_crowns/seed0/bn+predictor.npz \
    --export_dir=exports/tree_crowns --tflite_path=exports/tree_crowns.tflite

With `--patch` the export folder also gets the patch file alone
(`patch.npz`): what a task adds to a base that is already deployed. A
patch-training run (`*_patch`, `*_spot` experiments) writes its patch to
`<model_dir>/patch.npz`; export it with the run's own experiment and
config, `--checkpoint_path=<model_dir>` and that `--patch`.

A SavedModel export ends by printing where it is, the checkpoint it came from
and the commands that try it on an image and convert it to TFLite.
"""
import shlex

from absl import app
from absl import flags

import univision  # pylint: disable=unused-import  (sets the Keras mode)
import tensorflow as tf, tf_keras

from univision import registry_imports  # pylint: disable=unused-import
from univision.core import logging_setup
from univision.quantization import calibration
from univision.quantization import flat_graph
from univision.quantization import ptq
from univision.serving import saved_model as saved_model_lib
from univision.serving import tflite as tflite_lib

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
_SIGNATURES = flags.DEFINE_list(
    'signatures', [], 'More input types to serve besides --input_type, each '
    'as signature serving_<type> (e.g. image_bytes,image_tensor).')
_TFLITE_PATH = flags.DEFINE_string(
    'tflite_path', None, 'Also write a TFLite model here (the SavedModel is '
    'then exported with input_type=tflite, batch 1).')
_QUANT_TYPE = flags.DEFINE_enum(
    'quant_type', None,
    ['int8_full', 'int8_full_int8_io', 'int8_full_fp32_io', 'qat',
     'qat_int8_io', 'qat_fp32_io', 'fp16', 'default', *ptq.IO_DTYPES],
    'TFLite quantization (Model Garden names, plus qat_int8_io and '
    'univision\'s post-training int8 ptq, ptq_int8_io, ptq_fp32_io); unset: '
    'float. qat* types need a QAT experiment (mnv4_*_qat).')
_PATCH = flags.DEFINE_string(
    'patch', None, 'A model patch (.npz, univision.modeling.patches) applied '
    'on top of --checkpoint_path (the shared base): one task\'s detector.')
_CALIBRATION_STEPS = flags.DEFINE_integer(
    'calibration_steps', 100,
    'Training images that calibrate Model Garden\'s int8* types.')
_CALIBRATION_DATA = flags.DEFINE_string(
    'calibration_data', '', 'ptq*: TFRecords of the calibration images '
    '(default: the experiment\'s train_data.input_path, read without '
    'augmentation); never the evaluated split.')
_CALIBRATION_IMAGES = flags.DEFINE_integer(
    'calibration_images', ptq.Calibration.images,
    'ptq*: how many calibration images (the first, in file order).')
_CALIBRATION_ESTIMATOR = flags.DEFINE_enum(
    'calibration_estimator', ptq.Calibration.estimator,
    list(calibration.ESTIMATORS), 'ptq*: how activation ranges are read '
    'off the calibration outputs (univision.quantization.calibration).')
_CALIBRATION_PERCENTILE = flags.DEFINE_float(
    'calibration_percentile', ptq.Calibration.percentile,
    'ptq*: upper percentile of the percentile estimator.')
_OP_SET = flags.DEFINE_enum(
    'op_set', ptq.Calibration.op_set, list(flat_graph.OP_SETS),
    'ptq*: ops the integer graph may use (edgetpu: attention and GELU as '
    'Edge TPU ops).')


def _summary(saved_model: str) -> list[str]:
  """Where the SavedModel is, and the commands to try and convert it."""
  checkpoint = (tf.train.latest_checkpoint(_CHECKPOINT_PATH.value) or
                _CHECKPOINT_PATH.value)
  if _INPUT_TYPE.value == 'image_bytes':
    serve = ('python -c "import sys, tensorflow as tf; print(tf.saved_model.'
             "load(sys.argv[1]).signatures['serving_default']("
             'tf.io.read_file(sys.argv[2])[None]))" '
             f'{shlex.quote(saved_model)} IMAGE.png')
  else:
    serve = f'saved_model_cli show --all --dir {shlex.quote(saved_model)}'
  convert = ['python', 'export.py', f'--experiment={_EXPERIMENT.value}',
             *(f'--config_file={f}' for f in _CONFIG_FILE.value or [])]
  if _PARAMS_OVERRIDE.value:
    convert.append(f'--params_override={_PARAMS_OVERRIDE.value}')
  if _PATCH.value:
    convert.append(f'--patch={_PATCH.value}')
  export_dir = _EXPORT_DIR.value
  convert += [f'--checkpoint_path={_CHECKPOINT_PATH.value}',
              f'--export_dir={export_dir}/tflite_export',
              f'--tflite_path={export_dir}/model.tflite']
  return [f'SavedModel:       {saved_model} (from {checkpoint})',
          f'Serve:            {serve}',
          f'To TFLite:        {shlex.join(convert)} '
          '(int8: add --quant_type=ptq)',
          'QAT int8:         make qat-demo (quantization-aware training of the '
          '`make demo` model)']


def _copy_patch() -> list[str]:
  """Writes the patch file alone next to the export; its summary line."""
  if not _PATCH.value:
    return []
  tf.io.gfile.makedirs(_EXPORT_DIR.value)
  path = f'{_EXPORT_DIR.value}/patch.npz'
  tf.io.gfile.copy(_PATCH.value, path, overwrite=True)
  return [f'Patch file:       {path} ({tf.io.gfile.stat(path).length:,} '
          'bytes, on top of the base checkpoint)']


def main(_):
  if _TFLITE_PATH.value:
    path = tflite_lib.export_tflite(
        _EXPERIMENT.value, _CONFIG_FILE.value, _PARAMS_OVERRIDE.value,
        _CHECKPOINT_PATH.value, _EXPORT_DIR.value, _TFLITE_PATH.value,
        _QUANT_TYPE.value, _CALIBRATION_STEPS.value, _PATCH.value,
        ptq.Calibration(
            data=_CALIBRATION_DATA.value, images=_CALIBRATION_IMAGES.value,
            estimator=_CALIBRATION_ESTIMATOR.value,
            percentile=_CALIBRATION_PERCENTILE.value, op_set=_OP_SET.value))
    print('\n'.join([f'TFLite:           {path}', *_copy_patch()]))
    return
  saved_model = saved_model_lib.export(
      _EXPERIMENT.value, _CONFIG_FILE.value, _PARAMS_OVERRIDE.value,
      _CHECKPOINT_PATH.value, _EXPORT_DIR.value, _INPUT_TYPE.value,
      _INPUT_IMAGE_SIZE.value, _BATCH_SIZE.value, _SIGNATURES.value,
      _PATCH.value)
  print('\n'.join(_summary(saved_model) + _copy_patch()))


if __name__ == '__main__':
  logging_setup.setup()
  flags.mark_flags_as_required(['experiment', 'checkpoint_path', 'export_dir'])
  app.run(main)
