"""Post-training int8 through the readiness tool, and its argument checks."""
import pytest

from univision.quantization import readiness


def test_model_gardens_int8_full_conv_small_is_ready(tmp_path):
  result = readiness.check_model('MobileNetV4ConvSmall', 32, 'edgetpu',
                                 str(tmp_path), method='int8_full')
  assert result.tflite_path.endswith('_int8_full.tflite')
  assert result.num_float_ops == 0 and not result.problems
  assert result.logits_correlation > 0.8


def test_unknown_method_is_named(tmp_path):
  with pytest.raises(ValueError, match="method='dynamic' is not"):
    readiness.check_model('MobileNetV4ConvSmall', 32, 'edgetpu',
                          str(tmp_path), method='dynamic')
