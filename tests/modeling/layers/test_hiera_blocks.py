"""Tests for Hiera's mask-unit attention and block."""
import numpy as np
import pytest
import tensorflow as tf, tf_keras

from univision.modeling.layers import hiera_blocks
from univision.modeling.layers import hiera_tokens


def _unrolled(height: int, width: int, channels: int,
              seed: int = 0) -> tf.Tensor:
  maps = tf.random.stateless_normal([1, height, width, channels],
                                    seed=[seed, 0])
  return hiera_tokens.Unroll(2, 3)(maps)


def _changed_units(attention, tokens, height: int, width: int,
                   num_levels: int, unit_side: int) -> np.ndarray:
  """Which mask units of the output move when input token 0 changes.

  `height`, `width`, `num_levels` describe the output token map (after any
  q-pooling) and `unit_side` its mask unit.
  """
  changed = tf.tensor_scatter_nd_add(tokens, [[0, 0]],
                                     tf.ones([1, tokens.shape[-1]]))
  delta = attention(changed) - attention(tokens)
  maps = hiera_tokens.Reroll(height, width, 2, num_levels)(delta)[0]
  units = tf.reshape(tf.abs(maps), [height // unit_side, unit_side,
                                    width // unit_side, unit_side, -1])
  return tf.reduce_max(units, axis=[1, 3, 4]).numpy() > 1e-6


@pytest.mark.parametrize('q_stride', [1, 2])
def test_mask_unit_attention_stays_within_the_unit(q_stride):
  tokens = _unrolled(16, 24, 8)  # 2x3 mask units of 8x8 tokens.
  side = 8 // q_stride
  attention = hiera_blocks.MaskUnitAttention(
      16, 2, q_stride=q_stride, mask_unit_size=side, use_mask_unit_attn=True)
  changed = _changed_units(attention, tokens, 16 // q_stride, 24 // q_stride,
                           4 - q_stride, side)
  # Token 0 (the top-left pixel) is in unit (0, 0); no other unit moves.
  np.testing.assert_array_equal(changed, [[True, False, False],
                                          [False, False, False]])


def test_global_attention_mixes_all_units():
  tokens = _unrolled(16, 24, 8)
  attention = hiera_blocks.MaskUnitAttention(16, 2, mask_unit_size=8)
  assert _changed_units(attention, tokens, 16, 24, 3, 8).all()


def test_block_pools_queries_and_changes_width():
  block = hiera_blocks.HieraBlock(32, 2, q_stride=2, mask_unit_size=4,
                                  use_mask_unit_attn=True)
  out = block(_unrolled(16, 16, 16))
  assert out.shape == (1, 64, 32)
  assert block.proj is not None and block.drop_path is None


def test_q_pooling_without_width_change_is_rejected():
  block = hiera_blocks.HieraBlock(16, 2, q_stride=2)
  with pytest.raises(ValueError, match='width change'):
    block(_unrolled(16, 16, 16))


def test_heads_must_divide_width():
  with pytest.raises(ValueError, match='multiple of num_heads=3'):
    hiera_blocks.MaskUnitAttention(16, 3)


def test_stochastic_depth_only_in_training():
  block = hiera_blocks.HieraBlock(16, 1, stochastic_depth_drop_rate=0.5)
  tokens = tf.random.stateless_normal([64, 16, 16], seed=[3, 4])
  np.testing.assert_allclose(block(tokens, training=False).numpy(),
                             block(tokens, training=False).numpy())
  assert not np.allclose(block(tokens, training=True).numpy(),
                         block(tokens, training=False).numpy())


@pytest.mark.parametrize('layer', [
    hiera_blocks.MaskUnitAttention(32, 2, q_stride=2, mask_unit_size=4,
                                   use_mask_unit_attn=True),
    hiera_blocks.HieraBlock(32, 2, q_stride=2, mask_unit_size=4,
                            use_mask_unit_attn=True, mlp_ratio=2.0,
                            stochastic_depth_drop_rate=0.1,
                            kernel_regularizer=tf_keras.regularizers.L2(1e-4)),
], ids=lambda layer: type(layer).__name__)
def test_get_config_round_trip_keeps_outputs(layer):
  tokens = _unrolled(16, 16, 16)
  want = layer(tokens)
  config = layer.get_config()
  clone = type(layer).from_config(config)
  assert clone.get_config() == config
  clone(tokens)
  clone.set_weights(layer.get_weights())
  np.testing.assert_allclose(clone(tokens).numpy(), want.numpy(), atol=1e-6)
