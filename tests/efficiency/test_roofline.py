"""Roofline model: per-layer MACs/bytes, the formula, profiles, the command."""
import os

import pytest
import tf_keras
import yaml

from univision.efficiency import hardware
from univision.efficiency import pareto_plot
from univision.efficiency import roofline
from univision.modeling.layers import mobile_mqa


def _records(layer, input_shape, weight_bytes=4, activation_bytes=4):
  inputs = tf_keras.Input(input_shape[1:], batch_size=input_shape[0])
  model = tf_keras.Model(inputs, layer(inputs))
  return roofline.layer_records(model, input_shape, weight_bytes,
                                activation_bytes)


def test_conv_3x3_macs_and_bytes():
  conv = tf_keras.layers.Conv2D(16, 3, padding='same', use_bias=False)
  [record] = _records(conv, (1, 8, 8, 3), weight_bytes=1, activation_bytes=2)
  assert record.kind == 'conv'
  assert record.macs == 8 * 8 * 16 * (3 * 3 * 3)  # 27,648
  assert record.weight_bytes == 1 * (3 * 3 * 3 * 16)  # 432 int8 weights.
  # Input 8x8x3 = 192 read, output 8x8x16 = 1,024 written, 2 B each.
  assert record.activation_bytes == 2 * (192 + 1024)


def test_depthwise_macs_and_bytes():
  dw = tf_keras.layers.DepthwiseConv2D(3, padding='same', use_bias=False)
  [record] = _records(dw, (1, 6, 6, 8))
  assert record.kind == 'depthwise'
  assert record.macs == 6 * 6 * 8 * (3 * 3)  # 2,592
  assert record.weight_bytes == 4 * (3 * 3 * 8)  # 72 float32 weights.
  assert record.activation_bytes == 4 * (6 * 6 * 8 + 6 * 6 * 8)  # 288 + 288


def test_dense_macs_and_bytes():
  [record] = _records(tf_keras.layers.Dense(7), (1, 10))
  assert record.kind == 'dense'
  assert record.macs == 10 * 7
  assert record.weight_bytes == 4 * 10 * 7  # The bias (a BiasAdd) is not.
  assert record.activation_bytes == 4 * (10 + 7)


def test_mobile_mqa_attention_matmuls():
  layer = mobile_mqa.MobileMultiQueryAttention(2, 8, kv_strides=2)
  records = _records(layer, (1, 6, 4, 16))
  # 6x4 map: 24 queries of 2 heads x 8; kv stride 2: 3x2 = 6 keys, values.
  # Q K^T: q (24, 2, 8) x k (6, 8) -> logits (24, 2, 6); A V: probs
  # (24, 2, 6) x v (6, 8) -> (24, 2, 8). Both 24 * 2 * 6 * 8 = 2,304 MACs,
  # no weights, 384 + 48 + 288 = 720 activation elements.
  attention = [r for r in records if r.kind == 'attention']
  assert [r.macs for r in attention] == [2304, 2304]
  assert [r.weight_bytes for r in attention] == [0, 0]
  assert [r.activation_bytes for r in attention] == [4 * 720, 4 * 720]
  # The rest: q, k, v and output 1x1 convs, k and v 3x3 stride-2 depthwise.
  assert sorted(r.kind for r in records if r.kind != 'attention') == [
      'conv'] * 4 + ['depthwise'] * 2
  # The layer's weights are all read: 16x16 (q) + 2 x (3x3x16 + 16x8) + 16x16.
  assert sum(r.weight_bytes for r in records) == 4 * (256 + 2 * 272 + 256)


def _two_layers():
  # PeakMACs 100 MACs/s, bandwidth 10 B/s: RP = 10 MACs/byte.
  profile = hardware.HardwareProfile('toy', 100., 10., 1., 1.)
  heavy = roofline.LayerRecord('heavy', 'conv', 1000, 4, 6)  # 100 MACs/B.
  light = roofline.LayerRecord('light', 'depthwise', 10, 40, 60)  # 0.1.
  return profile, heavy, light


def test_roofline_compute_and_memory_bound_layers():
  profile, heavy, light = _two_layers()
  assert profile.ridge_point == 10
  # heavy: max(1000 / 100, 10 / 10) = max(10 s, 1 s): compute-bound.
  assert roofline.layer_time(heavy, 100., 10.) == 10
  # light: max(10 / 100, 100 / 10) = max(0.1 s, 10 s): memory-bound.
  assert roofline.layer_time(light, 100., 10.) == 10
  assert roofline.model_time([heavy, light], profile) == 20


def test_ridge_point_sweep():
  profile, heavy, light = _two_layers()
  # RP 0: only MACs count, (1000 + 10) / PeakMACs.
  assert roofline.model_time_at_ridge_point([heavy, light], 0, 100.) == 10.1
  # At the profile's own RP the sweep equals the roofline time.
  assert roofline.model_time_at_ridge_point(
      [heavy, light], profile.ridge_point, 100.) == pytest.approx(20)
  # RP 500: max(1000, 500 * 10) + max(10, 500 * 100) MAC units.
  assert roofline.model_time_at_ridge_point([heavy, light], 500) == 55000


@pytest.mark.parametrize('name', hardware.available_profiles())
def test_bundled_profiles_load(name):
  profile = hardware.load_profile(name)
  assert profile.ridge_point > 0
  assert profile.weight_bytes in (1, 2, 4)


def test_all_five_hardware_kinds_are_bundled():
  assert {'cpu', 'dsp', 'gpu', 'edgetpu', 'ane', 'this_machine'} <= set(
      hardware.available_profiles())


def _write(tmp_path, **changes):
  with open(os.path.join(hardware.HARDWARE_DIR, 'edgetpu.yaml')) as f:
    data = yaml.safe_load(f)
  for key, value in changes.items():
    if value is None:
      del data[key]
    else:
      data[key] = value
  path = str(tmp_path / 'bad.yaml')
  with open(path, 'w') as f:
    yaml.safe_dump(data, f)
  return path


@pytest.mark.parametrize('changes, message', [
    ({'bandwidth_bytes_per_s': None}, 'key bandwidth_bytes_per_s is missing'),
    ({'name': None}, 'key name is missing'),
    ({'peak_macs_per_s': {'value': -1, 'source': 'x'}},
     'key peak_macs_per_s.value must be a positive number'),
    ({'peak_macs_per_s': {'value': '2.0e12', 'source': 'x'}},
     'must be a positive number'),
    ({'weight_bytes': {'source': 'x'}}, 'key weight_bytes.value is missing'),
    ({'weight_bytes': {'value': 1}}, 'weight_bytes needs a `source`'),
    ({'weight_bytes': {'value': 1, 'assumed': True}}, 'has no `why`'),
])
def test_bad_profiles_name_file_and_key(tmp_path, changes, message):
  path = _write(tmp_path, **changes)
  with pytest.raises(hardware.ProfileError, match='bad.yaml') as error:
    hardware.load_profile(path)
  assert message in str(error.value)


def test_unknown_profile_lists_the_bundled_ones():
  with pytest.raises(hardware.ProfileError, match='edgetpu'):
    hardware.load_profile('tpu_v9')


def test_pareto_front():
  points = {'a': (1., 70.), 'b': (2., 75.), 'c': (3., 74.), 'd': (4., 80.)}
  assert pareto_plot.pareto_front(points) == ['a', 'b', 'd']


def test_command_for_one_small_model(tmp_path):
  plot = str(tmp_path / 'pareto.png')
  table = roofline.run('edgetpu', ['MobileNetV4ConvSmall'], plot)
  assert 'RP 29.4 MACs/byte' in table
  row = next(line for line in table.splitlines()
             if line.startswith('| MobileNetV4ConvSmall'))
  assert row.startswith('| MobileNetV4ConvSmall | 224 | 0.186 | 3.75 |')
  assert row.endswith('| 73.8 |')
  assert os.path.getsize(plot) > 0
