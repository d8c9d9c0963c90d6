"""Tests for ConvNormAct and the two padding modes."""
import numpy as np
import pytest
import tensorflow as tf, tf_keras

from univision.modeling.layers import conv_norm


def _conv(padding, strides, kernel_size=3, depthwise=False):
  layer = conv_norm.ConvNormAct(None if depthwise else 4, kernel_size,
                                strides=strides, depthwise=depthwise,
                                activation=None, use_norm=False,
                                padding=padding)
  return layer


@pytest.mark.parametrize('kernel_size,strides,expected', [
    (3, 1, 1), (3, 2, 1), (5, 2, 2), (1, 1, 0), (5, 1, 2)])
def test_symmetric_padding_size_matches_pytorch_rule(kernel_size, strides,
                                                     expected):
  assert conv_norm.symmetric_padding_size(kernel_size, strides) == expected


@pytest.mark.parametrize('depthwise', [False, True])
def test_symmetric_stride2_equals_explicit_pad_then_valid_conv(depthwise):
  x = tf.random.normal([2, 8, 10, 3], seed=1)
  layer = _conv('symmetric', 2, depthwise=depthwise)
  y = layer(x)
  padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
  if depthwise:
    want = tf.nn.depthwise_conv2d(padded, layer.conv.depthwise_kernel,
                                  [1, 2, 2, 1], 'VALID')
  else:
    want = tf.nn.conv2d(padded, layer.conv.kernel, 2, 'VALID')
  np.testing.assert_allclose(y.numpy(), want.numpy(), atol=1e-5)
  assert y.shape == (2, 4, 5, 3 if depthwise else 4)


def test_same_and_symmetric_differ_only_when_strided():
  x = tf.random.normal([1, 8, 8, 3], seed=2)
  for strides, should_match in ((1, True), (2, False)):
    same, sym = _conv('same', strides), _conv('symmetric', strides)
    same(x)
    sym(x)
    sym.set_weights(same.get_weights())
    assert np.allclose(same(x).numpy(), sym(x).numpy(),
                       atol=1e-6) == should_match


def test_unknown_padding_is_rejected_by_name():
  with pytest.raises(ValueError, match="padding='valid'"):
    conv_norm.ConvNormAct(4, 3, padding='valid')


def test_full_conv_needs_filters():
  with pytest.raises(ValueError, match='filters'):
    conv_norm.ConvNormAct(None, 3)


def test_norm_and_activation_are_applied():
  layer = conv_norm.ConvNormAct(4, 1, activation='relu')
  y = layer(tf.random.normal([2, 5, 5, 3]), training=True)
  assert float(tf.reduce_min(y)) >= 0.0
  assert len(layer.norm.weights) == 4


def test_get_config_round_trip():
  layer = conv_norm.ConvNormAct(
      8, 5, strides=2, activation='gelu', padding='symmetric',
      kernel_regularizer=tf_keras.regularizers.l2(1e-4), norm_epsilon=1e-5)
  config = layer.get_config()
  clone = conv_norm.ConvNormAct.from_config(config)
  assert clone.get_config() == config
  restored = tf_keras.utils.deserialize_keras_object(
      tf_keras.utils.serialize_keras_object(layer))
  assert isinstance(restored, conv_norm.ConvNormAct)
  assert restored.get_config() == config
