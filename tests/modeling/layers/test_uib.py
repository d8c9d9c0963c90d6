"""Tests for the Universal Inverted Bottleneck and FusedIB blocks."""
import numpy as np
import pytest
import tensorflow as tf, tf_keras

from univision.modeling.layers import fused_ib
from univision.modeling.layers import uib

# (start DW, middle DW) -> variant, the paper's Fig. 4.
VARIANTS = [((0, 3), 'IB'), ((3, 0), 'ConvNext'), ((3, 5), 'ExtraDW'),
            ((0, 0), 'FFN')]


@pytest.mark.parametrize('kernels,name', VARIANTS)
def test_variant_structure(kernels, name):
  start, middle = kernels
  block = uib.UniversalInvertedBottleneck(24, 4.0, start_dw_kernel_size=start,
                                          middle_dw_kernel_size=middle)
  y = block(tf.random.normal([2, 9, 7, 24]))
  assert block.variant == name
  assert (block.start_dw is not None) == bool(start)
  assert (block.middle_dw is not None) == bool(middle)
  if start:
    assert block.start_dw.conv.kernel_size == (start, start)
    assert block.start_dw.act is None  # No activation after the start DW.
  if middle:
    assert block.middle_dw.conv.kernel_size == (middle, middle)
    assert block.middle_dw.act is not None
  assert block.expand.conv.kernel.shape == (1, 1, 24, 96)
  assert block.project.conv.kernel.shape == (1, 1, 96, 24)
  assert block.project.act is None
  assert y.shape == (2, 9, 7, 24)


@pytest.mark.parametrize('kernels,strided', [((0, 3), 'middle'),
                                             ((3, 0), 'start'),
                                             ((3, 5), 'middle')])
def test_stride_goes_to_the_right_depthwise_conv(kernels, strided):
  block = uib.UniversalInvertedBottleneck(32, 2.0, strides=2,
                                          start_dw_kernel_size=kernels[0],
                                          middle_dw_kernel_size=kernels[1])
  y = block(tf.random.normal([1, 10, 6, 16]))
  assert y.shape == (1, 5, 3, 32)
  convs = {'start': block.start_dw, 'middle': block.middle_dw}
  for where, conv in convs.items():
    if conv is not None:
      assert conv.conv.strides == ((2, 2) if where == strided else (1, 1))


def test_stride_on_start_dw_when_middle_downsample_is_off():
  block = uib.UniversalInvertedBottleneck(16, 2.0, strides=2,
                                          start_dw_kernel_size=3,
                                          middle_dw_kernel_size=3,
                                          middle_dw_downsample=False)
  block(tf.zeros([1, 8, 8, 16]))
  assert block.start_dw.conv.strides == (2, 2)
  assert block.middle_dw.conv.strides == (1, 1)


def test_strided_ffn_is_rejected():
  with pytest.raises(ValueError, match='FFN'):
    uib.UniversalInvertedBottleneck(16, 2.0, strides=2,
                                    start_dw_kernel_size=0,
                                    middle_dw_kernel_size=0)


def test_expanded_width_is_rounded_to_divisible_by():
  block = uib.UniversalInvertedBottleneck(20, 3.0)
  block(tf.zeros([1, 4, 4, 20]))  # 20 * 3 = 60 -> 64.
  assert block.expand.conv.kernel.shape[-1] == 64


def test_residual_and_layer_scale():
  x = tf.random.normal([2, 6, 6, 16])
  block = uib.UniversalInvertedBottleneck(16, 2.0, start_dw_kernel_size=3,
                                          layer_scale_init_value=1e-5)
  block(x)
  block.layer_scale.gamma.assign(tf.zeros([16]))
  # Zero layer scale: the residual branch vanishes, the block is identity.
  np.testing.assert_allclose(block(x).numpy(), x.numpy(), atol=1e-7)
  block.layer_scale.gamma.assign(tf.ones([16]))
  branch = block.project(block.middle_dw(block.expand(block.start_dw(x))))
  np.testing.assert_allclose(block(x).numpy(), (x + branch).numpy(),
                             atol=1e-5)


def test_no_residual_when_shapes_change():
  block = uib.UniversalInvertedBottleneck(24, 2.0)
  x = tf.random.normal([1, 6, 6, 16])
  y = block(x)
  branch = block.project(block.middle_dw(block.expand(x)))
  np.testing.assert_allclose(y.numpy(), branch.numpy(), atol=1e-6)


def test_stochastic_depth_only_in_training():
  block = uib.UniversalInvertedBottleneck(8, 2.0,
                                          stochastic_depth_drop_rate=0.5)
  x = tf.random.normal([64, 4, 4, 8])
  block(x)
  dropped = 0
  y = block(x, training=True)
  for i in range(64):
    if np.allclose(y[i].numpy(), x[i].numpy()):
      dropped += 1
  assert 10 < dropped < 54  # About half of the samples skip the branch.
  block.layer_scale = None
  y_eval = block(x, training=False)
  assert not np.allclose(y_eval.numpy(), x.numpy())


def test_uib_get_config_round_trip():
  block = uib.UniversalInvertedBottleneck(
      32, 6.0, strides=2, start_dw_kernel_size=5, middle_dw_kernel_size=3,
      activation='gelu', layer_scale_init_value=1e-5,
      stochastic_depth_drop_rate=0.1, padding='symmetric',
      kernel_regularizer=tf_keras.regularizers.l2(1e-5), name='my_uib')
  config = block.get_config()
  clone = uib.UniversalInvertedBottleneck.from_config(config)
  assert clone.get_config() == config
  restored = tf_keras.utils.deserialize_keras_object(
      tf_keras.utils.serialize_keras_object(block))
  assert restored.get_config() == config
  x = tf.random.normal([1, 8, 8, 16])
  assert restored(x).shape == block(x).shape


def test_fused_ib_structure_and_residual():
  block = fused_ib.FusedInvertedBottleneck(48, 4.0, kernel_size=3, strides=2)
  y = block(tf.random.normal([2, 16, 12, 32]))
  assert y.shape == (2, 8, 6, 48)
  assert block.expand.conv.kernel.shape == (3, 3, 32, 128)
  assert block.project.conv.kernel.shape == (1, 1, 128, 48)
  same = fused_ib.FusedInvertedBottleneck(16, 2.0)
  x = tf.random.normal([1, 5, 5, 16])
  np.testing.assert_allclose(same(x).numpy(),
                             (x + same.project(same.expand(x))).numpy(),
                             atol=1e-5)


def test_fused_ib_get_config_round_trip():
  block = fused_ib.FusedInvertedBottleneck(48, 4.0, strides=2,
                                           padding='symmetric')
  config = block.get_config()
  assert fused_ib.FusedInvertedBottleneck.from_config(
      config).get_config() == config


def test_modulate_acts_on_the_normalised_expansion_before_its_activation():
  block = uib.UniversalInvertedBottleneck(24, 4.0, start_dw_kernel_size=3,
                                          middle_dw_kernel_size=3)
  x = tf.random.stateless_normal([2, 8, 8, 24], [0, 1])
  plain = block(x, training=True)
  assert block.pre_activation_channels == 96
  seen = []
  same = block(x, training=True, modulate=lambda h: seen.append(h) or h)
  np.testing.assert_allclose(same, plain, atol=1e-5)
  # Batch-normalised (training mode), not yet through the ReLU.
  (expansion,) = seen
  assert expansion.shape[-1] == 96 and float(tf.reduce_min(expansion)) < 0
  np.testing.assert_allclose(tf.reduce_mean(expansion, [0, 1, 2]), 0.0,
                             atol=1e-4)
  # Pushed below zero before the ReLU, the expansion carries nothing: the
  # block's output is its input plus what the rest makes of zeros.
  dead = block(x, training=False, modulate=lambda h: h - 1e4)
  rest = block.project(block.middle_dw(tf.zeros([2, 8, 8, 96]),
                                       training=False), training=False)
  np.testing.assert_allclose(dead, x + rest, atol=1e-4)
