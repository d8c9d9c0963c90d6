"""TFLite conversion (float, post-training full int8) and timed invocation.

The int8 conversion uses the converter settings of Model Garden's
`int8_full` quant type (`official/vision/serving/export_tflite_lib.py`):
`Optimize.DEFAULT`, a representative dataset, `TFLITE_BUILTINS_INT8` as the
only op set (so the converter must quantize every op or fail) and uint8
input and output. Only the calibration images differ: they are given here,
not read from an experiment's training data.
"""
from typing import Callable, Iterable

import numpy as np
import tensorflow as tf, tf_keras
from ai_edge_litert import interpreter as litert

from univision.quantization import keras_converter
from univision.quantization import tflite_ops


def float_model(model: tf_keras.Model, shape: tuple[int, ...]) -> bytes:
  """A float32 TFLite flatbuffer of `model` at the fixed input `shape`."""
  return keras_converter.converter(model, shape).convert()


def int8_model(model: tf_keras.Model, shape: tuple[int, ...],
               calibration: Iterable[np.ndarray]) -> bytes:
  """An integer-only TFLite model (uint8 I/O), post-training quantized.

  Args:
    model: The float Keras model.
    shape: The fixed input shape, batch first.
    calibration: Model-ready float images of `shape`, for the ranges.
  """
  images = [np.asarray(image, np.float32) for image in calibration]
  converter = keras_converter.converter(model, shape)
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  converter.representative_dataset = lambda: ([image] for image in images)
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
  converter.inference_input_type = tf.uint8
  converter.inference_output_type = tf.uint8
  return converter.convert()


def op_counts(path: str) -> tuple[int, int]:
  """(all ops, ops computing in float) of the TFLite model at `path`."""
  ops = tflite_ops.list_ops(path)
  return len(ops), sum(op.is_float for op in ops)


def op_sequence(path: str) -> list[tuple[str, tuple[str, ...]]]:
  """(op name, data dtypes) of every op of the model at `path`, in order."""
  return [(op.name, op.data_dtypes) for op in tflite_ops.list_ops(path)]


def invoker(path: str, threads: int, seed: int = 0) -> Callable[[], None]:
  """A blocking call running the model at `path` once on a fixed input.

  The interpreter is ai-edge-litert's, with its default XNNPACK delegate
  and `threads` threads; the input is random, in the input's own dtype.
  """
  runner = litert.Interpreter(model_path=path, num_threads=threads)
  runner.allocate_tensors()
  detail = runner.get_input_details()[0]
  image = np.random.default_rng(seed).standard_normal(detail['shape'])
  runner.set_tensor(detail['index'],
                    tflite_ops.quantize_input(image.astype(np.float32),
                                              detail))
  return runner.invoke
