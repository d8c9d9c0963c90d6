"""Tests for Mobile MQA on square and non-square maps."""
import numpy as np
import pytest
import tensorflow as tf, tf_keras

from univision.modeling.layers import mobile_mqa


def _reference_mqa(layer, x):
  """Mobile MQA recomputed in numpy from the layer's weights."""
  x = x.numpy()
  b, h, w, c = x.shape
  heads, kd, vd = layer._num_heads, layer._key_dim, layer._value_dim  # pylint: disable=protected-access
  wq = layer.query_proj.kernel.numpy()[0, 0]
  wk = layer.key_proj.kernel.numpy()[0, 0]
  wv = layer.value_proj.kernel.numpy()[0, 0]
  wo = layer.output_proj.kernel.numpy()[0, 0]
  kin, vin = x, x
  if layer.key_down is not None:
    kin = layer.key_down(tf.constant(x)).numpy()
    vin = layer.value_down(tf.constant(x)).numpy()
  q = (x.reshape(b, h * w, c) @ wq).reshape(b, h * w, heads, kd)
  k = kin.reshape(b, -1, c) @ wk  # [b, m, kd]: one head shared by all.
  v = vin.reshape(b, -1, c) @ wv
  out = np.zeros((b, h * w, heads, vd), np.float32)
  for i in range(b):
    for head in range(heads):
      logits = q[i, :, head] @ k[i].T / np.sqrt(kd)
      probs = np.exp(logits - logits.max(-1, keepdims=True))
      probs /= probs.sum(-1, keepdims=True)
      out[i, :, head] = probs @ v[i]
  return (out.reshape(b, h * w, heads * vd) @ wo).reshape(b, h, w, c)


@pytest.mark.parametrize('kv_strides,height,width', [
    (1, 6, 10), (2, 6, 10), (2, 7, 9), (1, 5, 3)])
def test_mqa_matches_reference_on_non_square_maps(kv_strides, height, width):
  layer = mobile_mqa.MobileMultiQueryAttention(num_heads=3, key_dim=8,
                                               value_dim=6,
                                               kv_strides=kv_strides)
  x = tf.random.normal([2, height, width, 16], seed=3)
  y = layer(x)
  assert y.shape == x.shape
  assert (layer.key_down is not None) == (kv_strides > 1)
  if kv_strides > 1:
    kin = layer.key_down(x)
    assert kin.shape[1:3] == (-(-height // 2), -(-width // 2))
  np.testing.assert_allclose(y.numpy(), _reference_mqa(layer, x), atol=1e-4)


def test_keys_and_values_have_a_single_shared_head():
  layer = mobile_mqa.MobileMultiQueryAttention(num_heads=4, key_dim=16,
                                               kv_strides=2)
  layer(tf.zeros([1, 8, 8, 32]))
  assert layer.query_proj.kernel.shape == (1, 1, 32, 64)
  assert layer.key_proj.kernel.shape == (1, 1, 32, 16)
  assert layer.value_proj.kernel.shape == (1, 1, 32, 16)
  assert layer.output_proj.kernel.shape == (1, 1, 4 * 16, 32)


def test_mqa_in_a_model_with_unknown_spatial_size():
  inputs = tf_keras.Input([None, None, 16])
  outputs = mobile_mqa.MobileMQABlock(2, 8, kv_strides=2)(inputs)
  model = tf_keras.Model(inputs, outputs)
  for shape in ([1, 12, 20, 16], [3, 9, 5, 16]):
    assert model(tf.random.normal(shape)).shape == shape


def test_block_is_prenorm_residual_with_layer_scale():
  block = mobile_mqa.MobileMQABlock(2, 8, kv_strides=2,
                                    layer_scale_init_value=1e-5)
  x = tf.random.normal([2, 6, 4, 16])
  block(x)
  block.layer_scale.gamma.assign(tf.zeros([16]))
  np.testing.assert_allclose(block(x).numpy(), x.numpy(), atol=1e-7)
  block.layer_scale.gamma.assign(tf.fill([16], 0.5))
  want = x + 0.5 * block.attention(block.norm(x))
  np.testing.assert_allclose(block(x).numpy(), want.numpy(), atol=1e-5)


def test_no_layer_scale_and_no_residual():
  block = mobile_mqa.MobileMQABlock(2, 8, layer_scale_init_value=None,
                                    use_residual=False)
  x = tf.random.normal([1, 4, 4, 16])
  y = block(x)
  assert block.layer_scale is None
  np.testing.assert_allclose(y.numpy(),
                             block.attention(block.norm(x)).numpy(),
                             atol=1e-6)


def test_get_config_round_trips():
  layer = mobile_mqa.MobileMultiQueryAttention(
      4, 48, value_dim=32, kv_strides=2, dw_kernel_size=5, dropout=0.1,
      padding='symmetric')
  config = layer.get_config()
  assert mobile_mqa.MobileMultiQueryAttention.from_config(
      config).get_config() == config
  block = mobile_mqa.MobileMQABlock(8, 64, kv_strides=2,
                                    stochastic_depth_drop_rate=0.2,
                                    norm_epsilon=1e-5, name='mqa')
  config = block.get_config()
  restored = tf_keras.utils.deserialize_keras_object(
      tf_keras.utils.serialize_keras_object(block))
  assert restored.get_config() == config


def test_bad_kv_strides():
  with pytest.raises(ValueError, match='kv_strides'):
    mobile_mqa.MobileMultiQueryAttention(4, 8, kv_strides=0)
