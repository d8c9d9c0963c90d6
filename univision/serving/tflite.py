"""TFLite export (float, post-training int8, QAT int8) via Model Garden.

The SavedModel is exported with Model Garden's `tflite` input type (batch 1,
already-normalized float images), then converted by
`official.vision.serving.export_tflite_lib.convert_tflite_model`, whose
integer calibration reads the experiment's `train_data` through univision's
own task (so the input checks apply). `quant_type` takes Model Garden's
names: None (float), `int8_full` (uint8 input/output), `int8_full_int8_io`,
`int8_full_fp32_io`, `qat` (uint8 input/output), `qat_fp32_io`, `fp16`,
`default`, plus `qat_int8_io`, which Model Garden lacks (converted here),
and univision's post-training int8 of a float classifier, `ptq` (uint8
I/O), `ptq_int8_io` and `ptq_fp32_io` (`univision.quantization.ptq`:
calibrated with a robust estimator on un-augmented images of a split other
than the evaluated one, integer-only, Edge TPU ops; no SavedModel is
written for them). The `qat*` types need a QAT experiment (`mnv4_*_qat`);
the others a float one.
A RetinaNet experiment is exported with Model Garden's TFLite detection
post-processing (`nms_version: tflite`, the TFLite_Detection_PostProcess op);
a model patch is applied on top of the base checkpoint as in the SavedModel.
"""
import os

import tensorflow as tf, tf_keras
from official.core import task_factory
from official.vision.configs import retinanet as mg_retinanet_cfg
from official.vision.serving import export_tflite_lib

from univision.configs import image_classification as ic_cfg
from univision.configs import image_classification_qat as qat_cfg
from univision.core import checkpoints
from univision.core import config_parsing
from univision.quantization import ptq
from univision.serving import saved_model


def export_tflite(experiment: str, config_files: list[str] | None,
                  params_override: str, checkpoint_path: str,
                  export_dir: str, tflite_path: str,
                  quant_type: str | None = None,
                  calibration_steps: int = 100,
                  patch_path: str | None = None,
                  calibration: ptq.Calibration = ptq.Calibration()) -> str:
  """Exports a TFLite model of an experiment's checkpoint; returns its path.

  Args:
    experiment: A registered experiment name.
    config_files: YAML overrides, applied in order.
    params_override: Final overrides.
    checkpoint_path: A checkpoint or a folder of checkpoints.
    export_dir: Folder for the intermediate TFLite-ready SavedModel.
    tflite_path: The `.tflite` file to write.
    quant_type: None for float, one of Model Garden's quantization types,
      or `qat_int8_io`, or a `ptq*` type.
    calibration_steps: Training images that calibrate Model Garden's
      `int8*` types.
    patch_path: A model patch applied on top of the checkpoint.
    calibration: The `ptq*` types' calibration.
  """
  params = config_parsing.parse_experiment(experiment, config_files,
                                           params_override)
  is_qat_experiment = isinstance(params.task,
                                 qat_cfg.ImageClassificationQATTask)
  if is_qat_experiment != (quant_type or '').startswith('qat'):
    raise ValueError(
        f'--quant_type={quant_type}: QAT types (qat, qat_int8_io, '
        'qat_fp32_io) go with a QAT experiment and only they do; '
        f'--experiment={experiment} is '
        f'{"a QAT" if is_qat_experiment else "a float"} experiment.')
  if quant_type in ptq.IO_DTYPES:
    return _write(_post_training(params, checkpoint_path, quant_type,
                                 calibration), tflite_path)
  if isinstance(params.task, mg_retinanet_cfg.RetinaNetTask):
    params.task.model.detection_generator.nms_version = 'tflite'
  saved = saved_model.export_from_params(params, checkpoint_path, export_dir,
                                         input_type='tflite', batch_size=1,
                                         patch_path=patch_path)
  if quant_type == 'qat_int8_io':
    return _write(_convert_qat_int8_io(saved), tflite_path)
  task = None
  if quant_type and quant_type.startswith('int8'):
    params.task.train_data.global_batch_size = 1
    task = task_factory.get_task(params.task)
  model = export_tflite_lib.convert_tflite_model(
      saved_model_dir=saved, quant_type=quant_type or None, params=params,
      task=task, calibration_steps=calibration_steps)
  return _write(model, tflite_path)


def restored_model(params, checkpoint_path: str):
  """(the experiment's task, its model with the checkpoint's weights).

  Raises:
    AssertionError: (from TensorFlow) naming the model variables the
      checkpoint does not hold.
  """
  task = task_factory.get_task(params.task)
  model = task.build_model()
  path = checkpoints.resolve_checkpoint(checkpoint_path)
  status = tf.train.Checkpoint(model=model).read(path)
  status.expect_partial().assert_existing_objects_matched()
  return task, model


def _post_training(params, checkpoint_path: str, quant_type: str,
                   calibration: ptq.Calibration) -> bytes:
  """`ptq.quantize` of a float classifier experiment's checkpoint."""
  if not isinstance(params.task, ic_cfg.ImageClassificationTask):
    raise ValueError(f'--quant_type={quant_type}: post-training int8 here '
                     'takes a float image classification experiment, not '
                     f'{type(params.task).__name__}.')
  task, model = restored_model(params, checkpoint_path)
  batches = ptq.calibration_batches(params, task, calibration)
  return ptq.quantize(model, tuple(params.task.model.input_size[:2]),
                      batches, calibration, ptq.IO_DTYPES[quant_type])


def _convert_qat_int8_io(saved_model_dir: str) -> bytes:
  """A QAT SavedModel as an integer-only TFLite model with int8 I/O."""
  converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  converter.inference_input_type = tf.int8
  converter.inference_output_type = tf.int8
  return converter.convert()


def _write(model: bytes, tflite_path: str) -> str:
  os.makedirs(os.path.dirname(tflite_path) or '.', exist_ok=True)
  with tf.io.gfile.GFile(tflite_path, 'wb') as f:
    f.write(model)
  return tflite_path
