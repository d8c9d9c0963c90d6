"""Tests for the MobileNetV4 backbone: counts, endpoints, factory, config."""
import numpy as np
import pytest
import tensorflow as tf, tf_keras
from official.vision.configs import common
from official.vision.modeling import classification_model
from official.vision.modeling.backbones import factory

from univision.configs import backbones as backbone_cfg
from univision.efficiency import counting
from univision.modeling.backbones import mobilenet_v4
from univision.modeling.backbones import mobilenet_v4_specs as specs
from univision.modeling.layers import mobile_mqa
from univision.modeling.layers import uib

# Trainable parameters with a 1000-class classifier: timm's figures, which
# Model Garden's implementation reproduces.
PARAMS_1000_CLASSES = {
    'MobileNetV4ConvSmall': 3_774_024,
    'MobileNetV4ConvMedium': 9_715_512,
    'MobileNetV4ConvLarge': 32_590_864,
    'MobileNetV4HybridMedium': 11_074_648,
    'MobileNetV4HybridLarge': 37_764_624,
}
ENDPOINT_CHANNELS = {
    'MobileNetV4ConvSmall': (32, 64, 96, 128),
    'MobileNetV4ConvMedium': (48, 80, 160, 256),
    'MobileNetV4ConvLarge': (48, 96, 192, 512),
    'MobileNetV4HybridMedium': (48, 80, 160, 256),
    'MobileNetV4HybridLarge': (48, 96, 192, 512),
}


@pytest.mark.parametrize('model_id', sorted(PARAMS_1000_CLASSES))
def test_exact_parameter_count_at_full_size(model_id):
  backbone = mobilenet_v4.MobileNetV4(
      model_id, input_specs=tf_keras.layers.InputSpec(
          shape=[None, specs.MODEL_SPECS[model_id].resolution,
                 specs.MODEL_SPECS[model_id].resolution, 3]))
  model = classification_model.ClassificationModel(backbone, 1000)
  assert counting.count_params(model) == PARAMS_1000_CLASSES[model_id]


@pytest.mark.parametrize('model_id', sorted(PARAMS_1000_CLASSES))
def test_endpoints_at_small_non_square_size(model_id):
  backbone = mobilenet_v4.MobileNetV4(model_id)
  outputs = backbone(tf.random.normal([1, 64, 96, 3]), training=False)
  for level, channels in zip(range(2, 6), ENDPOINT_CHANNELS[model_id]):
    stride = 2 ** level
    assert outputs[str(level)].shape == (1, 64 // stride, 96 // stride,
                                         channels)
    assert backbone.output_specs[str(level)][-1] == channels
  assert outputs[mobilenet_v4.HEAD_ENDPOINT].shape == (1, 1, 1, 1280)
  assert set(backbone.output_specs) == {'2', '3', '4', '5'}


def test_hybrid_uses_layer_scale_gelu_and_kv_downsampling():
  backbone = mobilenet_v4.MobileNetV4('MobileNetV4HybridLarge')
  blocks = [l for l in backbone.layers
            if isinstance(l, (uib.UniversalInvertedBottleneck,
                              mobile_mqa.MobileMQABlock))]
  mqas = [b for b in blocks if isinstance(b, mobile_mqa.MobileMQABlock)]
  assert len(mqas) == 8
  assert [b.attention._kv_strides for b in mqas] == [2] * 4 + [1] * 4  # pylint: disable=protected-access
  assert all(b.layer_scale is not None for b in blocks)
  assert all(b.get_config()['activation'] == 'gelu' for b in blocks
             if isinstance(b, uib.UniversalInvertedBottleneck))


def test_conv_models_have_no_layer_scale():
  backbone = mobilenet_v4.MobileNetV4('MobileNetV4ConvMedium')
  variants = [l.variant for l in backbone.layers
              if isinstance(l, uib.UniversalInvertedBottleneck)]
  assert all(l.layer_scale is None for l in backbone.layers
             if isinstance(l, uib.UniversalInvertedBottleneck))
  assert variants.count('FFN') == 4 and variants.count('ConvNext') == 4


def test_conv_small_spec_rows():
  """Conv-S as in the paper's Table 11 / timm's arch string."""
  rows = specs.CONV_SMALL.blocks
  assert [r.block for r in rows[:5]] == ['conv'] * 5
  uibs = [(r.start_dw_kernel_size, r.middle_dw_kernel_size, r.strides,
           r.filters, r.expand_ratio) for r in rows[5:]]
  assert uibs == [(5, 5, 2, 96, 3.0)] + [(0, 3, 1, 96, 2.0)] * 4 + [
      (3, 0, 1, 96, 4.0), (3, 3, 2, 128, 6.0), (5, 5, 1, 128, 4.0),
      (0, 5, 1, 128, 4.0), (0, 5, 1, 128, 3.0), (0, 3, 1, 128, 4.0),
      (0, 3, 1, 128, 4.0)]


def test_linear_stochastic_depth():
  backbone = mobilenet_v4.MobileNetV4(
      'MobileNetV4ConvSmall', stochastic_depth_drop_rate=0.2,
      flat_stochastic_depth_drop_rate=False)
  rates = [l.get_config()['stochastic_depth_drop_rate']
           for l in backbone.layers
           if isinstance(l, uib.UniversalInvertedBottleneck)]
  assert rates == sorted(rates) and 0 < rates[0] < rates[-1] < 0.2


def test_registered_in_model_garden_factory():
  config = backbone_cfg.Backbone(
      type='mobilenet_v4',
      mobilenet_v4=backbone_cfg.MobileNetV4(model_id='MobileNetV4HybridMedium',
                                            padding='symmetric'))
  backbone = factory.build_backbone(
      input_specs=tf_keras.layers.InputSpec(shape=[None, None, None, 3]),
      backbone_config=config,
      norm_activation_config=common.NormActivation(norm_epsilon=1e-5))
  assert isinstance(backbone, mobilenet_v4.MobileNetV4)
  assert backbone.get_config()['padding'] == 'symmetric'
  assert backbone.get_config()['norm_epsilon'] == 1e-5


def test_unknown_model_id_names_key_and_choices():
  config = backbone_cfg.Backbone(
      type='mobilenet_v4',
      mobilenet_v4=backbone_cfg.MobileNetV4(model_id='MobileNetV4Tiny'))
  with pytest.raises(ValueError, match=r"model_id='MobileNetV4Tiny' is not a "
                     r'MobileNetV4 model; known ids: .*MobileNetV4ConvSmall'):
    factory.build_backbone(
        input_specs=tf_keras.layers.InputSpec(shape=[None, None, None, 3]),
        backbone_config=config,
        norm_activation_config=common.NormActivation())


def test_get_config_round_trip_keeps_weights_layout():
  backbone = mobilenet_v4.MobileNetV4(
      'MobileNetV4HybridMedium', padding='symmetric',
      input_specs=tf_keras.layers.InputSpec(shape=[None, 96, 64, 3]))
  config = backbone.get_config()
  clone = mobilenet_v4.MobileNetV4.from_config(config)
  assert clone.get_config() == config
  assert [w.shape for w in clone.weights] == [w.shape for w in backbone.weights]
  clone.set_weights(backbone.get_weights())
  x = tf.random.normal([1, 96, 64, 3])
  np.testing.assert_allclose(clone(x)['5'].numpy(), backbone(x)['5'].numpy(),
                             atol=1e-5)


def test_backbone_without_head_returns_levels_only():
  full = mobilenet_v4.MobileNetV4('MobileNetV4ConvSmall')
  headless = mobilenet_v4.MobileNetV4('MobileNetV4ConvSmall',
                                      include_head=False)
  outputs = headless(tf.zeros([1, 64, 64, 3]), training=False)
  assert sorted(outputs) == ['2', '3', '4', '5']
  head_params = (960 * 128 + 2 * 960) + (1280 * 960 + 2 * 1280)
  assert (counting.count_params(full) - counting.count_params(headless)
          == head_params)
  rebuilt = mobilenet_v4.MobileNetV4.from_config(headless.get_config())
  assert sorted(rebuilt.output_names) == sorted(headless.output_names)


def test_output_stride_keeps_the_weights_and_stops_downsampling():
  full = mobilenet_v4.MobileNetV4('MobileNetV4ConvSmall')
  config = backbone_cfg.Backbone(
      type='mobilenet_v4', mobilenet_v4=backbone_cfg.MobileNetV4(
          model_id='MobileNetV4ConvSmall', output_stride=8))
  fine = factory.build_backbone(
      input_specs=tf_keras.layers.InputSpec(shape=[None, None, None, 3]),
      backbone_config=config,
      norm_activation_config=common.NormActivation())
  assert [w.shape for w in fine.weights] == [w.shape for w in full.weights]
  fine.set_weights(full.get_weights())  # A full-stride checkpoint loads.
  outputs = fine(tf.random.normal([1, 128, 96, 3]), training=False)
  assert sorted(outputs) == ['2', '3', '6']
  assert outputs['3'].shape == (1, 16, 12, 128)  # The last block's output.
  assert sum(b.strides for b in fine.model_spec.blocks) == len(
      fine.model_spec.blocks) + 3  # Stem, level 2 and level 3 strides only.
  rebuilt = mobilenet_v4.MobileNetV4.from_config(fine.get_config())
  assert rebuilt.get_config() == fine.get_config()
  assert rebuilt.model_spec == fine.model_spec
  with pytest.raises(ValueError, match='output_stride 12'):
    mobilenet_v4.MobileNetV4('MobileNetV4ConvSmall', output_stride=12)


def test_width_rounds_channels_as_timm():
  assert [specs.make_divisible(v) for v in (11.2, 33.6, 48.0, 12.0)] == [
      16, 32, 48, 16]
  small = specs.MODEL_SPECS['MobileNetV4ConvSmall035']
  assert small.blocks[0].filters == 32  # The stem is kept below 1.0x.
  assert [b.filters for b in small.blocks[1:5]] == [16, 16, 32, 24]
  assert small.head_filters == (336, 1280)
  hybrid = specs.MODEL_SPECS['MobileNetV4HybridMedium075']
  attention = [b for b in hybrid.blocks if b.block == 'mqa']
  assert {(b.num_heads, b.key_dim) for b in attention} == {(4, 64)}
  with pytest.raises(ValueError, match='multiplier 0'):
    specs.with_width(specs.CONV_SMALL, 0)


def test_output_stride_of_a_custom_table_round_trips():
  table = specs.MODEL_SPECS['MobileNetV4ConvSmall']
  backbone = mobilenet_v4.MobileNetV4('', model_spec=table, output_stride=16)
  rebuilt = mobilenet_v4.MobileNetV4.from_config(backbone.get_config())
  assert rebuilt.model_spec == backbone.model_spec
  assert sorted(rebuilt.output_specs) == ['2', '3', '4']
