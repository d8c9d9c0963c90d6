"""Tests for the Hiera MAE: masking, size, layout, targets, loss, training."""
import numpy as np
import pytest
import tensorflow as tf, tf_keras

from tests.modeling import test_mae
from univision.efficiency import counting
from univision.modeling import hiera_mae
from univision.modeling import mae_ops
from univision.modeling.layers import hiera_tokens


def _tiny(height: int = 64, width: int = 96, **kwargs):
  model = hiera_mae.HieraMaskedAutoencoder(
      (height, width), 'hiera_tiny', decoder_dim=32, decoder_depth=1,
      decoder_heads=4, **kwargs)
  model(tf.zeros([1, height, width, 3]))
  return model


def test_hiera_base_224_size_and_masked_predictions():
  """mae_hiera_base_224: 78,635,648 parameters, 240 x 768 on 2 images.

  Built in a TF1-style graph (variables get shapes, no initializer runs);
  the mask needs no weights, so a session evaluates it alone.
  """
  with tf.Graph().as_default():
    model = hiera_mae.HieraMaskedAutoencoder((224, 224), 'hiera_base')
    outputs = model(tf.zeros([2, 224, 224, 3]))
    assert counting.count_params(model) == 78_635_648
    assert not model.non_trainable_variables
    assert (model.num_mask_units, model.num_keep) == (49, 19)
    assert model.patch_size == 16
    assert outputs['predictions'].shape == (2, 196, 768)
    with tf.compat.v1.Session() as session:
      removed = session.run(outputs['mask'])
  # 30 removed units x 2x2 tokens per image: 240 predicted tokens.
  np.testing.assert_array_equal(removed.sum(axis=1), [120, 120])


def test_masking_keeps_int_units_times_0_4_of_each_image():
  noise = tf.random.stateless_uniform([3, 49], seed=[0, 1])
  keep = hiera_tokens.keep_mask_from_noise(noise, 19)
  np.testing.assert_array_equal(tf.reduce_sum(tf.cast(keep, tf.int32), 1),
                                [19] * 3)
  # The kept units are the 19 lowest-noise ones.
  threshold = tf.sort(noise, axis=1)[:, 18:19]
  np.testing.assert_array_equal(keep, noise <= threshold)
  model = _tiny()  # 2 x 3 units: int(6 * 0.4) = 2 kept, 4 x 2x2 removed.
  assert (model.num_mask_units, model.num_keep) == (6, 2)
  outputs = model(tf.zeros([2, 64, 96, 3]))
  assert outputs['predictions'].shape == (2, 24, 768)
  np.testing.assert_array_equal(outputs['mask'].numpy().sum(axis=1),
                                [16, 16])


def test_mask_follows_the_noise_in_raster_token_order():
  model = _tiny()
  noise = tf.constant([[0.9, 0.1, 0.8, 0.7, 0.6, 0.2]])  # Keep units 1, 5.
  mask = model(tf.zeros([1, 64, 96, 3]), noise=noise)['mask']
  # Final grid 4 x 6 tokens; unit (row r, column c) is rows 2r..2r+1 and
  # columns 2c..2c+1.
  expected = np.ones([4, 6])
  expected[0:2, 2:4] = 0.0
  expected[2:4, 4:6] = 0.0
  np.testing.assert_array_equal(mask.numpy().reshape(4, 6), expected)


def test_decoder_puts_units_back_in_raster_order():
  decoder = hiera_mae.HieraMAEDecoder((2, 3), 2, 4, decoder_dim=8, depth=0,
                                      num_heads=2)
  keep = tf.constant([[False, True, False, False, False, True]])
  latent = tf.random.stateless_normal([1, 2, 2, 2, 5], seed=[2, 3])
  decoder(latent, keep)
  decoder.pos_embed.assign(tf.zeros_like(decoder.pos_embed))
  out = decoder(latent, keep).numpy().reshape(4, 6, -1)
  embedded = tf.reshape(decoder.embed(latent), [1, 8, 8])
  per_token = decoder.pred(decoder.norm(embedded)).numpy().reshape(
      2, 2, 2, -1)
  masked = decoder.pred(decoder.norm(decoder.mask_token)).numpy()[0, 0]
  np.testing.assert_allclose(out[0:2, 2:4], per_token[0], atol=1e-5)
  np.testing.assert_allclose(out[2:4, 4:6], per_token[1], atol=1e-5)
  for row, col in ((0, 0), (1, 1), (2, 0), (3, 3), (0, 5)):
    np.testing.assert_allclose(out[row, col], masked, atol=1e-5)


def test_fusion_maps_earlier_stages_to_the_last_unit_size():
  fusion = hiera_mae.MultiScaleFusion(6, [4, 2])
  maps = [tf.ones([2, 3, 8, 8, 4]), tf.ones([2, 3, 4, 4, 5]),
          tf.ones([2, 3, 2, 2, 6])]
  assert fusion(maps).shape == (2, 3, 2, 2, 6)
  assert [c.kernel.shape for c in fusion.convs] == [(4, 4, 4, 6),
                                                     (2, 2, 5, 6)]


def test_targets_are_channel_first_16px_patches():
  images = tf.random.stateless_uniform([1, 32, 48, 3], seed=[4, 5])
  patches = mae_ops.patchify(images, 16, channels_first=True)
  assert patches.shape == (1, 6, 768)
  # Token 4 is row 1, column 1: pixels 16-31 x 16-31, as (channel, y, x).
  block = tf.transpose(images[0, 16:32, 16:32], [2, 0, 1])
  np.testing.assert_array_equal(patches[0, 4], tf.reshape(block, [-1]))


def test_loss_counts_the_masked_units_only():
  model = _tiny()
  images = tf.random.stateless_uniform([2, 64, 96, 3], seed=[6, 7])
  noise = tf.random.stateless_uniform([2, 6], seed=[8, 9])
  outputs = model(images, noise=noise)
  predictions, mask = outputs['predictions'].numpy(), outputs['mask'].numpy()
  loss = mae_ops.reconstruction_loss(images, predictions, mask, 16, True,
                                     channels_first=True)
  # By hand: 16-px blocks as (channel, y, x), normalised with the unbiased
  # variance, squared error averaged over the removed tokens' values.
  blocks = images.numpy().reshape(2, 4, 16, 6, 16, 3).transpose(
      0, 1, 3, 5, 2, 4).reshape(2, 24, 768)
  mean = blocks.mean(-1, keepdims=True)
  targets = (blocks - mean) / np.sqrt(blocks.var(-1, ddof=1, keepdims=True)
                                      + 1e-6)
  removed = mask.astype(bool)
  expected = np.mean((predictions[removed] - targets[removed])**2)
  assert float(loss) == pytest.approx(expected, rel=1e-5)
  # Predictions for kept units do not count.
  changed = np.where(removed[..., None], predictions, 100.0)
  assert float(mae_ops.reconstruction_loss(
      images, changed, mask, 16, True, channels_first=True)) == pytest.approx(
          float(loss), rel=1e-6)


def test_initialisation_is_the_references():
  model = _tiny()
  # Xavier-uniform Linear kernels: the bound is sqrt(6 / (fan_in + fan_out)).
  for dense in (model.decoder.pred, model.encoder.blocks[0].attn.qkv):
    fan_in, fan_out = dense.kernel.shape
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    assert 0.95 * bound < np.abs(dense.kernel.numpy()).max() <= bound
  kernel = model.encoder.get_layer('patch_embed').conv.kernel.numpy()
  bound = np.sqrt(6.0 / (7 * 7 * 3 + 96))  # As a [96, 147] Linear.
  assert 0.95 * bound < np.abs(kernel).max() <= bound
  # Different layers draw different values.
  blocks = model.encoder.blocks
  assert not np.array_equal(blocks[0].fc1.kernel.numpy(),
                            blocks[1].fc1.kernel.numpy())


def test_round_trip_through_get_config():
  model = _tiny()
  clone = hiera_mae.HieraMaskedAutoencoder.from_config(model.get_config())
  clone(tf.zeros([1, 64, 96, 3]))
  clone.set_weights(model.get_weights())
  images = tf.random.stateless_uniform([2, 64, 96, 3], seed=[10, 11])
  noise = tf.random.stateless_uniform([2, 6], seed=[12, 13])
  np.testing.assert_allclose(clone(images, noise=noise)['predictions'],
                             model(images, noise=noise)['predictions'],
                             atol=1e-5)
  for layer in (model.fusion, model.decoder):
    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config


def test_a_ratio_that_keeps_no_unit_is_rejected():
  with pytest.raises(ValueError, match='mask_ratio=0.9 keeps no mask unit'):
    hiera_mae.HieraMaskedAutoencoder((64, 64), 'hiera_tiny', mask_ratio=0.9)


def test_reconstruction_loss_falls_in_a_short_run():
  start, zero, end = test_mae.short_run(
      lambda: hiera_mae.HieraMaskedAutoencoder(
          (64, 64), 'hiera_tiny', decoder_dim=64, decoder_depth=1,
          decoder_heads=4),
      test_mae.ramps(size=64), patch_size=16, steps=60,
      learning_rate=1e-3, channels_first=True)
  # Measured with this helper on a 2-vCPU AVX2 AMD EPYC (2026-12-05), seeds
  # 0-4: start 1.14-1.17, zero 1.0, end 0.17-0.26 (end/zero <= 0.26, a 2x
  # margin on the bound; seed 0: 0.19). Before the fix the weights followed
  # Python's `random` state and the masks the suite's earlier random ops:
  # end 0.29-0.34 after 40 steps in three fresh processes, 0.53 (a failure)
  # inside the full suite on the same CPU. Beating the zero predictor by
  # half needs the visible unit.
  assert end < 0.7 * start
  assert end < 0.5 * zero
