"""The Edge TPU readiness check on small hand-made TFLite models."""
import subprocess
import sys

import numpy as np
import tensorflow as tf, tf_keras

from tests import conftest
from univision.quantization import edgetpu_check


def _convert(model, path, int8=True, io=tf.uint8, fixed_batch=True):
  if fixed_batch:
    spec = tf.TensorSpec([1, *model.input_shape[1:]], tf.float32)
    function = tf.function(lambda x: model(x)).get_concrete_function(spec)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function],
                                                                model)
  else:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
  if int8:
    shape = [1, *model.input_shape[1:]]
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [np.random.default_rng(i).normal(size=shape).astype(np.float32)]
        for i in range(8))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = io
    converter.inference_output_type = io
  with open(path, 'wb') as f:
    f.write(converter.convert())
  return str(path)


def _cnn(activation='relu'):
  inputs = tf_keras.Input([16, 16, 3])
  x = tf_keras.layers.Conv2D(8, 3, strides=2, padding='same',
                             activation=activation)(inputs)
  x = tf_keras.layers.DepthwiseConv2D(3, padding='same')(x)
  x = tf_keras.layers.GlobalAveragePooling2D()(x)
  return tf_keras.Model(inputs, tf_keras.layers.Dense(4)(x))


def _reasons(path, **kwargs):
  _, problems = edgetpu_check.check(path, **kwargs)
  return [(p.op.name, p.reason) for p in problems]


def test_integer_cnn_is_ready(tmp_path):
  assert _reasons(_convert(_cnn(), tmp_path / 'm.tflite')) == []


def test_float_model_is_not_ready(tmp_path):
  reasons = _reasons(_convert(_cnn(), tmp_path / 'f.tflite', int8=False))
  assert ('CONV_2D', 'float tensors float32') in reasons


def test_float_io_is_reported_unless_allowed(tmp_path):
  path = _convert(_cnn(), tmp_path / 'm.tflite', io=tf.float32)
  reasons = _reasons(path)
  assert reasons and all(name in ('QUANTIZE', 'DEQUANTIZE')
                         for name, _ in reasons)
  assert _reasons(path, allow_float_io=True) == []


def test_unsupported_ops_and_rank(tmp_path):
  inputs = tf_keras.Input([6, 4, 8])
  q = tf_keras.layers.Reshape([6, 4, 2, 4])(inputs)
  k = tf_keras.layers.Reshape([6, 4, 4, 2])(inputs)
  product = tf_keras.layers.Lambda(lambda t: tf.matmul(t[0], t[1]))([q, k])
  model = tf_keras.Model(inputs, tf_keras.layers.Flatten()(product))
  reasons = _reasons(_convert(model, tmp_path / 'mm.tflite'))
  assert ('BATCH_MATMUL',
          'not in the Edge TPU supported-operations table') in reasons
  assert any('more than 3 dimensions' in r for _, r in reasons)


def test_fully_connected_with_run_time_weights_is_reported(tmp_path):
  # A product of two activations written as a 2-D matmul: FULLY_CONNECTED
  # whose weights come from another op. The CNN's Dense head (constant
  # weights) is not reported.
  inputs = tf_keras.Input([6, 8], batch_size=1)
  keys = tf_keras.layers.Dense(8)(inputs)
  product = tf_keras.layers.Lambda(lambda t: tf.matmul(
      t[0][0], t[1][0], transpose_b=True)[None])([inputs, keys])
  model = tf_keras.Model(inputs, product)
  reasons = _reasons(_convert(model, tmp_path / 'fc.tflite'))
  run_time = [r for r in reasons if 'computed at run time' in r[1]]
  assert run_time == [('FULLY_CONNECTED', 'weights computed at run time '
                       '(the Edge TPU compiler needs constant ones)')]


def test_gelu_is_not_on_the_list(tmp_path):
  reasons = _reasons(_convert(_cnn(activation='gelu'), tmp_path / 'g.tflite'))
  assert ('GELU', 'not in the Edge TPU supported-operations table') in reasons


def test_dynamic_batch_is_reported(tmp_path):
  path = _convert(_cnn(), tmp_path / 'd.tflite', int8=False,
                  fixed_batch=False)
  assert any(r == 'dynamic tensor size' for _, r in _reasons(path))


def test_cli_exit_codes(tmp_path):
  ready = _convert(_cnn(), tmp_path / 'm.tflite')
  not_ready = _convert(_cnn(), tmp_path / 'f.tflite', int8=False)
  run = lambda p: subprocess.run(
      [sys.executable, '-m', 'univision.quantization.edgetpu_check', p],
      cwd=conftest.REPO, capture_output=True, text=True, timeout=300,
      check=False)
  ok, bad, missing = run(ready), run(not_ready), run(str(tmp_path / 'no.tflite'))
  assert ok.returncode == 0 and 'READY' in ok.stdout
  assert bad.returncode == 1 and 'NOT READY' in bad.stdout
  assert 'CONV_2D' in bad.stdout and 'float32' in bad.stdout
  assert missing.returncode == 2
  assert missing.stderr.strip().splitlines()[-1].startswith(
      f'error: {tmp_path / "no.tflite"}: not a readable TFLite model')
