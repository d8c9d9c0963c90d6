"""TFLite export (float and post-training int8) of a univision classifier."""

import numpy as np
import pytest

from univision import registry_imports  # pylint: disable=unused-import
from univision.quantization import tflite_ops
from univision.serving import tflite


@pytest.fixture(name='checkpoint', scope='module')
def _checkpoint(classifier_checkpoint):
  return classifier_checkpoint


def _run(path, image):
  interpreter = tflite_ops.load_interpreter(path)
  interpreter.allocate_tensors()
  inp = interpreter.get_input_details()[0]
  interpreter.set_tensor(inp['index'], tflite_ops.quantize_input(image, inp))
  interpreter.invoke()
  return {out['name']: tflite_ops.dequantize_output(
      interpreter.get_tensor(out['index']), out)
          for out in interpreter.get_output_details()}


def test_float_tflite_equals_keras(checkpoint, tmp_path):
  path = tflite.export_tflite(
      'mnv4_fashion_mnist', None, checkpoint['override'], checkpoint['path'],
      str(tmp_path / 'export'), str(tmp_path / 'float.tflite'))
  ops = tflite_ops.list_ops(path)
  assert {op.name for op in ops} >= {'CONV_2D', 'DEPTHWISE_CONV_2D'}
  assert all(op.is_float for op in ops if op.name == 'CONV_2D')
  image = np.random.default_rng(0).normal(size=(1, 32, 32, 3)).astype(
      np.float32)
  want = checkpoint['model'](image, training=False).numpy()
  got = _run(path, image)
  logits = next(v for v in got.values() if np.abs(v.sum() - 1) > 1e-3)
  np.testing.assert_allclose(logits, want, atol=1e-4)


def test_post_training_int8_is_integer_only(checkpoint, tmp_path):
  path = tflite.export_tflite(
      'mnv4_fashion_mnist', None, checkpoint['override'], checkpoint['path'],
      str(tmp_path / 'export'), str(tmp_path / 'int8.tflite'),
      quant_type='int8_full', calibration_steps=8)
  ops = tflite_ops.list_ops(path)
  assert not [op for op in ops if op.is_float]
  converters = [op for op in ops if op.name in ('QUANTIZE', 'DEQUANTIZE')]
  assert converters and all(op.at_boundary for op in converters)
  interpreter = tflite_ops.load_interpreter(path)
  assert interpreter.get_input_details()[0]['dtype'] == np.uint8
  histogram = tflite_ops.histogram(ops)
  assert histogram[('CONV_2D', ('int8',))] > 10


def test_unreadable_tflite_is_named(tmp_path):
  bad = tmp_path / 'bad.tflite'
  bad.write_bytes(b'not a flatbuffer')
  with pytest.raises(ValueError, match='bad.tflite: not a readable TFLite'):
    tflite_ops.list_ops(str(bad))


def test_unknown_extra_signature_is_named(tmp_path):
  from univision.serving import saved_model  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match="'jpeg'.*image_bytes"):
    saved_model.export('mnv4_fashion_mnist', None, '', str(tmp_path),
                       str(tmp_path / 'out'), extra_signatures=['jpeg'])
