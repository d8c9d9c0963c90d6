"""QAT of MobileNetV4 models to integer-only TFLite (block kinds, not every model)."""
import numpy as np
import pytest
import tensorflow as tf, tf_keras
import tensorflow_model_optimization as tfmot
from ai_edge_litert import interpreter as litert

from univision.modeling.backbones import mobilenet_v4_specs
from univision.quantization import qat
from univision.quantization import qat_layers
from univision.quantization import readiness
from univision.quantization import tflite_ops

_SIZE = 32


# Hybrid-L's kinds of block at a fraction of its depth and width: fused IB,
# ExtraDW and ConvNext UIBs, Mobile MQA with and without key/value
# downsampling, layer scale, GELU. Whether its int8 file is integer-only
# and which ops it holds follow from these ops; Hybrid-L itself takes ~4x
# as long (its flat graph is checked in test_flat_graph.py).
_SMALL_HYBRID = mobilenet_v4_specs.ModelSpec(
    activation='gelu', layer_scale_init_value=1e-5, head_filters=(64, 128),
    blocks=(mobilenet_v4_specs.conv(3, 2, 16),
            mobilenet_v4_specs.fused_ib(3, 2, 24, 4.0),
            mobilenet_v4_specs.uib(3, 5, 2, 32, 4.0),
            mobilenet_v4_specs.uib(3, 3, 2, 48, 4.0),
            mobilenet_v4_specs.mqa(2, 16, 2),
            mobilenet_v4_specs.uib(3, 0, 1, 48, 4.0),
            mobilenet_v4_specs.uib(5, 5, 2, 64, 4.0),
            mobilenet_v4_specs.mqa(2, 16, 1),
            mobilenet_v4_specs.uib(5, 0, 1, 64, 4.0)))


# Conv-M has every conv block kind (fused IB and each UIB), the small hybrid
# adds Hybrid-L's; Conv-S is checked at full size below, Hybrid-M in
# test_ptq.py (`ptq.quantize` is this conversion of the same QAT graph,
# with zero training steps). Every built-in model's int8 file is checked by
# `python -m univision.quantization.readiness` (docs/quantization.md).
@pytest.mark.parametrize('model_id,spec', [('MobileNetV4ConvMedium', None),
                                           ('small_hybrid', _SMALL_HYBRID)])
def test_qat_int8_tflite_is_edgetpu_ready(model_id, spec, tmp_path):
  result = readiness.check_model(model_id, _SIZE, 'edgetpu', str(tmp_path),
                                 model_spec=spec)
  assert result.num_float_ops == 0
  assert not result.problems, [(p.op.name, p.reason) for p in result.problems]
  # The int8 model follows the fake-quantized Keras model it was converted
  # from; random-weight networks amplify rounding differences, so this is
  # loose (measured 0.87-0.99; a wrong input scale or layout gives ~0).
  assert result.logits_correlation > 0.8


def test_anti_aliased_models_are_refused_with_a_reason():
  model = readiness.random_classifier('MobileNetV4ConvBlurMedium', _SIZE)
  with pytest.raises(ValueError, match="antialias='blur'.*not supported"):
    qat.quantize_classifier(model, (_SIZE, _SIZE))


def test_qat_int8_at_full_size_is_edgetpu_ready(tmp_path):
  spec = mobilenet_v4_specs.MODEL_SPECS['MobileNetV4ConvSmall']
  result = readiness.check_model('MobileNetV4ConvSmall', spec.resolution,
                                 'edgetpu', str(tmp_path))
  assert result.num_float_ops == 0 and not result.problems
  assert result.logits_correlation > 0.8


def test_tflite_op_set_is_integer_only_with_fc_attention_and_gelu(tmp_path):
  result = readiness.check_model('small_hybrid', _SIZE, 'tflite',
                                 str(tmp_path), model_spec=_SMALL_HYBRID)
  assert result.num_float_ops == 0
  # The attention products are FULLY_CONNECTED ops (int8 kernels far faster
  # than BATCH_MATMUL's on the CPU), two per Mobile MQA block, whose
  # weights (keys, values) are computed at run time: fine on the CPU, not
  # on an Edge TPU.
  ops = tflite_ops.list_ops(result.tflite_path)
  assert 'BATCH_MATMUL' not in {op.name for op in ops}
  run_time_fc = [p for p in result.problems
                 if p.op.name == 'FULLY_CONNECTED']
  assert len(run_time_fc) == 2 * 2
  assert {p.op.name for p in result.problems} == {'FULLY_CONNECTED', 'GELU'}
  assert {p.reason for p in result.problems} == {
      'not in the Edge TPU supported-operations table',
      'weights computed at run time (the Edge TPU compiler needs constant '
      'ones)'}
  assert result.logits_correlation > 0.8
  _check_run_time_fully_connected(result.tflite_path)


def _check_run_time_fully_connected(path: str) -> None:
  """Each FULLY_CONNECTED with run-time weights = numpy's int8 product.

  TFLite's int8 kernel must honour the weights' zero point (activations are
  quantized asymmetrically, weights usually are not): ignoring it is off by
  tens of steps.
  """
  run_time_fc = {op.index for op in tflite_ops.list_ops(path)
                 if op.name == 'FULLY_CONNECTED' and op.runtime_inputs[1]}
  interpreter = litert.Interpreter(model_path=path,
                                   experimental_preserve_all_tensors=True)
  interpreter.allocate_tensors()
  detail = interpreter.get_input_details()[0]
  interpreter.set_tensor(detail['index'], np.random.default_rng(0).integers(
      0, 256, detail['shape']).astype(detail['dtype']))
  interpreter.invoke()
  tensors = {t['index']: t for t in interpreter.get_tensor_details()}
  checked = 0
  for op in interpreter._get_ops_details():  # pylint: disable=protected-access
    if op['index'] not in run_time_fc:
      continue
    (a, (sa, za)), (w, (sw, zw)) = [
        (interpreter.get_tensor(i).astype(np.float64),
         tensors[i]['quantization']) for i in op['inputs'][:2]]
    so, zo = tensors[op['outputs'][0]]['quantization']
    real = ((a - za) * sa).reshape(-1, a.shape[-1]) @ (
        (w - zw) * sw).reshape(-1, w.shape[-1]).T
    expected = np.clip(np.round(real / so + zo), -128, 127)
    got = interpreter.get_tensor(op['outputs'][0]).reshape(expected.shape)
    assert np.abs(got - expected).max() <= 1, op['index']
    checked += 1
  assert checked == len(run_time_fc) == 4


def test_every_layer_is_quantize_wrapped():
  model = readiness.random_classifier('small_hybrid', _SIZE,
                                      model_spec=_SMALL_HYBRID)
  qat_model = qat.quantize_classifier(model, (_SIZE, _SIZE))
  kinds = {type(layer).__name__ for layer in qat_model.layers}
  assert kinds == {'InputLayer', 'QuantizeLayer', 'QuantizeWrapperV2'}
  depthwise = [l for l in qat_model.layers
               if isinstance(l.layer if hasattr(l, 'layer') else l,
                             tf_keras.layers.DepthwiseConv2D)]
  assert depthwise and all(
      isinstance(l.quantize_config, qat_layers.DepthwiseConvQuantizeConfig)
      for l in depthwise)


def test_depthwise_kernel_ranges_are_per_channel():
  layer = tf_keras.layers.DepthwiseConv2D(3, use_bias=False)
  layer.build((None, 8, 8, 4))
  # Channel c holds values of size 10^-c: one shared range would round the
  # small channels to 0.
  kernel = np.random.default_rng(0).uniform(-1, 1, (3, 3, 4, 1))
  kernel *= (10.0 ** -np.arange(4)).reshape(1, 1, 4, 1)
  quantizer = qat_layers.DepthwiseKernelQuantizer()
  wrapper = tf_keras.layers.Layer()
  ranges = quantizer.build(kernel.shape, 'depthwise_kernel', wrapper)
  assert ranges['min_var'].shape == (4,)
  quantized = quantizer(tf.constant(kernel, tf.float32), training=True,
                        weights=ranges).numpy()
  for c in range(4):
    step = np.abs(kernel[..., c, 0]).max() / 127
    assert np.abs(quantized[..., c, 0] - kernel[..., c, 0]).max() <= step
    assert np.abs(quantized[..., c, 0]).max() > 0


def test_quantize_scope_knows_our_layers():
  objects = qat_layers.quantize_scope_objects()
  for name in ('BatchMatMul', 'ReduceSum', 'OutputQuantizeConfig',
               'DepthwiseConvQuantizeConfig'):
    assert name in objects
  config = qat_layers.OutputQuantizeConfig()
  assert isinstance(config, tfmot.quantization.keras.QuantizeConfig)
  layer = qat_layers.BatchMatMul(transpose_b=True)
  assert qat_layers.BatchMatMul.from_config(layer.get_config()).get_config()[
      'transpose_b']


@pytest.mark.parametrize('transpose_b', [False, True])
def test_batch_matmul_at_batch_1_is_a_2d_product_of_the_same_value(
    transpose_b):
  rng = np.random.default_rng(0)
  a = rng.standard_normal((3, 5, 4)).astype(np.float32)
  b = rng.standard_normal((3, 6, 4) if transpose_b else (3, 4, 6)
                          ).astype(np.float32)
  layer = qat_layers.BatchMatMul(transpose_b=transpose_b)
  expected = np.matmul(a, np.swapaxes(b, 1, 2) if transpose_b else b)
  np.testing.assert_allclose(layer([a, b]).numpy(), expected, atol=1e-5)
  # At a static batch of 1 the graph holds a 2-D MatMul (TFLite's
  # FULLY_CONNECTED), not a BatchMatMul, and computes the same.
  graph = tf.function(layer).get_concrete_function(
      [tf.TensorSpec((1, *a.shape[1:])), tf.TensorSpec((1, *b.shape[1:]))])
  op_types = {op.type for op in graph.graph.get_operations()}
  assert 'MatMul' in op_types and not any('BatchMatMul' in t
                                          for t in op_types)
  np.testing.assert_allclose(layer([a[:1], b[:1]]).numpy(), expected[:1],
                             atol=1e-5)
