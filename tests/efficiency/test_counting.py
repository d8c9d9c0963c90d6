"""MAC and parameter counting against hand-computed layers and references."""
import pytest
import tensorflow as tf, tf_keras

from univision.efficiency import counting
from univision.efficiency import report
from univision.modeling.backbones import mobilenet_v4
from univision.modeling.layers import mobile_mqa


def _macs(layer, input_shape):
  inputs = tf_keras.Input(input_shape[1:], batch_size=input_shape[0])
  return counting.total_macs(tf_keras.Model(inputs, layer(inputs)),
                             input_shape)


def test_conv_macs():
  conv = lambda s: tf_keras.layers.Conv2D(16, 3, strides=s, padding='same')
  assert _macs(conv(1), (1, 8, 8, 3)) == 8 * 8 * 16 * 3 * 3 * 3
  assert _macs(conv(2), (1, 8, 8, 3)) == 4 * 4 * 16 * 3 * 3 * 3
  assert _macs(conv(1), (2, 8, 8, 3)) == 2 * 8 * 8 * 16 * 3 * 3 * 3


def test_depthwise_and_dense_macs():
  dw = tf_keras.layers.DepthwiseConv2D(5, padding='same')
  assert _macs(dw, (1, 6, 6, 8)) == 6 * 6 * 8 * 5 * 5
  assert _macs(tf_keras.layers.Dense(7), (1, 10)) == 70


def test_mobile_mqa_macs_include_attention():
  layer = mobile_mqa.MobileMultiQueryAttention(2, 8, kv_strides=2)
  # 6x4 map, 16 channels: 24 queries, 3x2 = 6 keys/values.
  q_proj = 24 * 16 * 16
  kv_down = 6 * 16 * 3 * 3
  kv_proj = 6 * 16 * 8
  attention = 24 * 2 * 8 * 6 * 2  # Q K^T and A V.
  out_proj = 24 * 16 * 16
  want = q_proj + 2 * (kv_down + kv_proj) + attention + out_proj
  assert _macs(layer, (1, 6, 4, 16)) == want


def test_unknown_shapes_are_refused():
  inputs = tf_keras.Input([None, None, 3])
  model = tf_keras.Model(inputs, tf_keras.layers.Conv2D(4, 1)(inputs))
  with pytest.raises(ValueError, match='not fully known'):
    counting.total_macs(model, (1, None, None, 3))


def test_count_params_excludes_bn_statistics():
  model = tf_keras.Sequential([tf_keras.Input([4, 4, 3]),
                               tf_keras.layers.Conv2D(8, 1, use_bias=False),
                               tf_keras.layers.BatchNormalization()])
  assert counting.count_params(model) == 3 * 8 + 2 * 8
  assert counting.count_params(model, trainable_only=False) == 3 * 8 + 4 * 8


def test_per_block_macs_add_up():
  backbone = mobilenet_v4.MobileNetV4('MobileNetV4HybridMedium')
  costs = counting.count_macs(backbone, (1, 64, 96, 3))
  names = [b.name for b in backbone.blocks] + ['head_conv', 'head_embedding']
  by_layer = counting.macs_by_layer(costs, names)
  assert by_layer['other'] == 0
  assert all(by_layer[n] > 0 for n in names)
  assert sum(by_layer.values()) == sum(c.macs for c in costs)


@pytest.mark.parametrize('model_id', sorted(report.FVCORE_GMACS))
def test_full_size_macs_match_fvcore_on_timm(model_id):
  measured = report.measure(model_id)
  assert abs(measured['gmacs'] - report.FVCORE_GMACS[model_id]) < 5e-4
