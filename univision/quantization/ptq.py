"""Post-training int8 of a MobileNetV4 classifier that works every time.

    tflite_bytes = ptq.quantize(float_model, (64, 64), batches)

Route: the QAT model of the float classifier (as `qat.quantize_classifier`
builds it: the flat graph with batch norm folded, attention and GELU
expressed in Edge TPU ops with `op_set='edgetpu'`), its ranges set by
`calibration.calibrate` with a robust estimator, zero training steps, then
the same integer-only conversion as QAT (`qat.convert`). Chosen over
feeding the TFLite converter a representative dataset (Model Garden's
`int8_full`) because there the converter takes each tensor's absolute
min/max over the calibration images, which one outlier image stretches
(five runs of one command on the `make demo` model gave 33.8% to 90.4%
top-1), and because the converter quantizes the float graph as it is: the
hybrids' attention einsums become BATCH_MATMUL and Hybrid-L's GELU stays
GELU, neither on the Edge TPU. Here the ranges are ours to estimate, the
hybrids come out Edge TPU-ready as after QAT, and the same checkpoint,
images and settings give the same bytes.

Calibration images (`calibration_batches`) come from the experiment's
validation-style pipeline (no augmentation, file order, no shuffle) on a
split other than the evaluated one: by default the training split. The
default estimator, `image_percentile` at 99 (`calibration`), was chosen on
held-out training images of the `make demo` model, where one planted
outlier image among 512 sent min/max calibration to 11% top-1 and left it
unmoved (`results/ptq/summary.md`, `make ptq-report`).
"""
import dataclasses
import fnmatch
import os

import numpy as np
import tensorflow as tf, tf_keras
from official.core import config_definitions as cfg

from univision.quantization import calibration
from univision.quantization import qat

IO_DTYPES = {'ptq': tf.uint8, 'ptq_int8_io': tf.int8,
             'ptq_fp32_io': tf.float32}


@dataclasses.dataclass(frozen=True)
class Calibration:
  """Where the calibration images come from and how ranges are read.

  Attributes:
    data: A file pattern of TFRecords in the experiment's format; empty:
      the experiment's `task.train_data.input_path`.
    images: How many images (the first ones, in file order).
    batch_size: Images per calibration batch.
    estimator: One of `calibration.ESTIMATORS`.
    percentile: The upper percentile of the two percentile estimators.
    op_set: The flat graph's op set (`flat_graph.OP_SETS`).
  """
  data: str = ''
  images: int = 512
  batch_size: int = 64
  estimator: str = 'image_percentile'
  percentile: float = 99.0
  op_set: str = 'edgetpu'


def quantize(model: tf_keras.Model, input_size: tuple[int, int],
             batches, settings: Calibration = Calibration(),
             io_dtype: tf.DType = tf.uint8) -> bytes:
  """An integer-only TFLite model (batch 1) of float classifier `model`.

  Its signature serves `logits` and `probs`, as Model Garden's classifier
  exports do.

  Args:
    model: A univision MobileNetV4 `ClassificationModel` with its trained
      float weights.
    input_size: (height, width) of the TFLite model.
    batches: Batches of model-ready images (as the float model takes them).
    settings: The estimator and op set (`data` and `images` are
      `calibration_batches`' business).
    io_dtype: `tf.uint8`, `tf.int8` or `tf.float32` inputs and outputs.
  """
  qat_model, flat = qat.quantize_classifier_and_flat(model, input_size,
                                                     settings.op_set)
  calibration.calibrate(qat_model, flat, batches, settings.estimator,
                        settings.percentile)
  # Model Garden's classifier exports serve `logits` and `probs`. A fixed
  # name: Keras would number it per process, and the bytes would differ.
  logits = qat_model.output
  serving = tf_keras.Model(
      qat_model.inputs,
      {'logits': logits,
       'probs': tf_keras.layers.Softmax(name='probs')(logits)},
      name='ptq_classifier')
  return qat.convert(serving, io_dtype)


def calibration_batches(params: cfg.ExperimentConfig, task,
                        settings: Calibration) -> list[np.ndarray]:
  """The first `settings.images` images of the calibration split, batched.

  Read by `task.build_inputs` with the experiment's `validation_data`
  settings (so no augmentation), the input path replaced by
  `settings.data` (default: the training split's), in file order.

  Raises:
    ValueError: naming the pattern, if it matches no file, is the split the
      experiment evaluates on (`task.validation_data.input_path`), names
      test files, holds images of another size than the training split's,
      or yields no image; or for a count or batch size below 1.
  """
  pattern = settings.data or params.task.train_data.input_path
  if settings.images < 1 or settings.batch_size < 1:
    raise ValueError(f'Calibration: images ({settings.images}) and batch '
                     f'size ({settings.batch_size}) must be >= 1.')
  files = tf.io.gfile.glob(pattern)
  if not files:
    raise ValueError(f'Calibration data {pattern!r}: no file matches.')
  evaluated = params.task.validation_data.input_path
  tests = [f for f in files if fnmatch.fnmatch(os.path.basename(f), 'test*')]
  if pattern == evaluated or tests:
    raise ValueError(
        f'Calibration data {pattern!r} is the split the model is evaluated '
        f'on ({evaluated!r}) or a test split ({tests[:1]}); calibrate on '
        'training or validation images (--calibration_data).')
  train_pattern = params.task.train_data.input_path
  if pattern != train_pattern:
    want, got = _image_size(train_pattern), _image_size(pattern)
    if want != got:
      raise ValueError(
          f'Calibration data {pattern!r} holds {got[0]}x{got[1]} images; '
          f'the training split {train_pattern!r} holds {want[0]}x{want[1]}.')
  data = params.task.validation_data.replace(
      input_path=pattern, global_batch_size=settings.batch_size,
      is_training=False, drop_remainder=False, cache=False)
  batches, count = [], 0
  for images, _ in task.build_inputs(data):
    batches.append(images.numpy()[:settings.images - count])
    count += len(batches[-1])
    if count >= settings.images:
      break
  if not count:
    raise ValueError(f'Calibration data {pattern!r}: no image was read.')
  return batches


def _image_size(pattern: str) -> tuple[int, int]:
  """(height, width) of the first image of the first file of `pattern`."""
  files = sorted(tf.io.gfile.glob(pattern))
  if not files:
    raise ValueError(f'{pattern!r}: no file matches.')
  for record in tf.data.TFRecordDataset(files[:1]).take(1):
    example = tf.io.parse_single_example(
        record, {'image/encoded': tf.io.FixedLenFeature([], tf.string)})
    shape = tf.io.decode_image(example['image/encoded'],
                               expand_animations=False).shape
    return int(shape[0]), int(shape[1])
  raise ValueError(f'{files[0]}: holds no record.')
