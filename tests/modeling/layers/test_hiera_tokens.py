"""Tests for Hiera's token layout: unroll / reroll, masking, patch embedding."""
import numpy as np
import pytest
import tensorflow as tf, tf_keras

from univision.modeling.layers import hiera_blocks
from univision.modeling.layers import hiera_tokens


def _random_map(height: int, width: int, channels: int = 3) -> tf.Tensor:
  return tf.random.stateless_normal([2, height, width, channels], seed=[0, 1])


@pytest.mark.parametrize('height,width,levels', [(8, 8, 3), (16, 24, 3),
                                                 (12, 8, 2), (6, 4, 1)])
def test_unroll_reroll_round_trip(height, width, levels):
  maps = _random_map(height, width)
  tokens = hiera_tokens.Unroll(2, levels)(maps)
  assert tokens.shape == (2, height * width, 3)
  back = hiera_tokens.Reroll(height, width, 2, levels)(tokens)
  np.testing.assert_array_equal(back.numpy(), maps.numpy())


def test_unroll_order_is_phases_finest_first():
  positions = tf.reshape(tf.range(64, dtype=tf.float32), [1, 8, 8, 1])
  tokens = hiera_tokens.Unroll(2, 3)(positions)[0, :, 0].numpy()
  # Token i = (y1, x1, y2, x2, y3, x3) in binary, level 1 most significant;
  # its pixel has y = y1 + 2 y2 + 4 y3 (same for x).
  bits = (np.arange(64)[:, None] >> np.arange(5, -1, -1)) & 1
  ys = bits[:, 0] + 2 * bits[:, 2] + 4 * bits[:, 4]
  xs = bits[:, 1] + 2 * bits[:, 3] + 4 * bits[:, 5]
  np.testing.assert_array_equal(tokens, 8 * ys + xs)


def test_q_pooling_of_unrolled_tokens_is_a_2x2_max_pool():
  maps = _random_map(16, 8)
  tokens = hiera_tokens.Unroll(2, 3)(maps)
  pooled = hiera_blocks.max_pool_tokens(tokens, 4)
  got = hiera_tokens.Reroll(8, 4, 2, 2)(pooled)
  want = tf.nn.max_pool2d(maps, 2, 2, 'VALID')
  np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_keep_mask_units_and_per_unit_reroll():
  maps = _random_map(16, 24)  # A 2x3 grid of 8x8-token mask units.
  keep = tf.constant([[True, False, False, True, True, False],
                      [False, True, True, False, False, True]])
  tokens = hiera_tokens.keep_mask_units(hiera_tokens.Unroll(2, 3)(maps), keep)
  assert tokens.shape == (2, 3 * 64, 3)
  units = hiera_tokens.Reroll(16, 24, 2, 3)(tokens, per_unit=True)
  assert units.shape == (2, 3, 8, 8, 3)
  grid = tf.reshape(tf.transpose(tf.reshape(maps, [2, 2, 8, 3, 8, 3]),
                                 [0, 1, 3, 2, 4, 5]), [2, 6, 8, 8, 3])
  for image in range(2):
    want = tf.boolean_mask(grid[image], keep[image])
    np.testing.assert_array_equal(units[image].numpy(), want.numpy())


def test_random_keep_mask_keeps_int_of_kept_fraction():
  keep = hiera_tokens.random_keep_mask(8, 49, 0.6, seed=0).numpy()
  assert keep.shape == (8, 49) and keep.dtype == bool
  assert int(49 * (1 - 0.6)) == 19
  assert (keep.sum(axis=1) == 19).all()
  assert len({row.tobytes() for row in keep}) > 1


def test_patch_embedding_shapes_and_position_embedding():
  layer = hiera_tokens.HieraPatchEmbedding(16)
  maps = layer(tf.zeros([2, 64, 96, 3]))
  assert maps.shape == (2, 16, 24, 16)
  assert layer.pos_embed.shape == (1, 16 * 24, 16)
  # On zero images the output is conv bias + position embedding, in raster.
  want = tf.reshape(layer.pos_embed, [1, 16, 24, 16]) + layer.conv.bias
  np.testing.assert_allclose(maps[1].numpy(), want[0].numpy(), atol=1e-6)


def test_patch_embedding_zeroes_pixels_under_masked_units():
  layer = hiera_tokens.HieraPatchEmbedding(8)
  images = tf.random.stateless_normal([1, 64, 64, 3], seed=[1, 2])
  unit_mask = tf.constant([[[True, False], [False, False]]])
  zeroed = images * tf.pad(tf.ones([1, 32, 32, 1]), [[0, 0], [0, 32],
                                                     [0, 32], [0, 0]])
  np.testing.assert_allclose(layer(images, unit_mask=unit_mask).numpy(),
                             layer(zeroed).numpy(), atol=1e-6)


def test_patch_embedding_needs_a_fixed_size():
  with pytest.raises(ValueError, match='fixed input size'):
    hiera_tokens.HieraPatchEmbedding(8)(tf_keras.Input([None, None, 3]))


@pytest.mark.parametrize('layer', [
    hiera_tokens.HieraPatchEmbedding(
        8, kernel_regularizer=tf_keras.regularizers.L2(1e-4)),
    hiera_tokens.Unroll(2, 2),
    hiera_tokens.Reroll(8, 12, 2, 1),
], ids=lambda layer: type(layer).__name__)
def test_get_config_round_trip(layer):
  config = layer.get_config()
  clone = type(layer).from_config(config)
  assert clone.get_config() == config


def test_keep_mask_units_with_an_unknown_batch_size():
  """Validation batches (drop_remainder=False) have no static batch size."""
  keep = tf.constant([[True, False, True, False]] * 2)
  tokens = tf.reshape(tf.range(2 * 8 * 3, dtype=tf.float32), [2, 8, 3])
  keep_units = tf.function(
      hiera_tokens.keep_mask_units,
      input_signature=[tf.TensorSpec([None, 8, 3]),
                       tf.TensorSpec([None, 4], tf.bool)])
  np.testing.assert_array_equal(
      keep_units(tokens, keep), hiera_tokens.keep_mask_units(tokens, keep))
