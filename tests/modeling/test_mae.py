"""Tests for the MAE model: masking, position codes, targets, loss, size."""
import random

import numpy as np
import pytest
import tensorflow as tf, tf_keras

from univision.modeling import mae
from univision.modeling import mae_ops


def _tiny(**kwargs) -> mae.MaskedAutoencoder:
  model = mae.MaskedAutoencoder((32, 32), 'tiny', decoder_dim=32,
                                decoder_depth=1, decoder_heads=4, **kwargs)
  model(tf.zeros([1, 32, 32, 3]))
  return model


@pytest.mark.parametrize('num_tokens,mask_ratio,kept', [
    (196, 0.75, 49), (49, 0.6, 19), (64, 0.75, 16), (10, 0.33, 6)])
def test_masking_keeps_exactly_int_n_times_one_minus_ratio(
    num_tokens, mask_ratio, kept):
  tokens = tf.random.stateless_normal([3, num_tokens, 5], seed=[0, 1])
  masking = mae_ops.random_masking(tokens, mask_ratio)
  assert masking.kept.shape == (3, kept, 5)
  assert masking.ids_keep.shape == (3, kept)
  np.testing.assert_array_equal(masking.mask.numpy().sum(axis=1),
                                [num_tokens - kept] * 3)
  # The kept tokens are the ones the indices name, and unmasked there.
  np.testing.assert_array_equal(
      masking.kept, tf.gather(tokens, masking.ids_keep, batch_dims=1))
  np.testing.assert_array_equal(
      tf.gather(masking.mask, masking.ids_keep, batch_dims=1), 0.0)


def test_restore_indices_invert_the_shuffle():
  tokens = tf.random.stateless_normal([4, 20, 3], seed=[2, 3])
  masking = mae_ops.random_masking(tokens, 0.75)
  ids_shuffle = tf.argsort(masking.ids_restore, axis=1)
  np.testing.assert_array_equal(ids_shuffle[:, :5], masking.ids_keep)
  shuffled = tf.gather(tokens, ids_shuffle, batch_dims=1)
  np.testing.assert_array_equal(
      tf.gather(shuffled, masking.ids_restore, batch_dims=1), tokens)
  for row in masking.ids_restore.numpy():
    assert sorted(row) == list(range(20))


def test_masking_keeps_the_lowest_noise_tokens():
  noise = tf.constant([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.6, 0.4]])
  tokens = tf.reshape(tf.range(8, dtype=tf.float32), [2, 4, 1])
  masking = mae_ops.random_masking(tokens, 0.5, noise)
  np.testing.assert_array_equal(masking.ids_keep, [[1, 3], [0, 3]])
  np.testing.assert_array_equal(masking.mask, [[1, 0, 1, 0], [0, 1, 1, 0]])


def test_bad_mask_ratio_is_rejected():
  with pytest.raises(ValueError, match='mask_ratio must be in'):
    mae_ops.num_kept(10, 1.0)


def test_sincos_2d_codes_columns_then_rows():
  codes = mae_ops.sincos_2d(8, 2, 3)
  assert codes.shape == (7, 8)
  np.testing.assert_array_equal(codes[0], 0.0)  # cls token.
  # Token at row 1, column 2 is index 1 + 1 * 3 + 2 = 6.
  omega = 1.0 / 10000.0**(np.arange(2) / 2)
  expected = np.concatenate([np.sin(2 * omega), np.cos(2 * omega),
                             np.sin(1 * omega), np.cos(1 * omega)])
  np.testing.assert_allclose(codes[6], expected, rtol=1e-6)


def test_patchify_order_and_round_trip():
  images = tf.reshape(tf.range(2 * 4 * 6 * 3, dtype=tf.float32),
                      [2, 4, 6, 3])
  patches = mae_ops.patchify(images, 2)
  assert patches.shape == (2, 6, 12)
  # Patch 1 is rows 0-1, columns 2-3, flattened (row, column, channel).
  np.testing.assert_array_equal(
      patches[0, 1], tf.reshape(images[0, 0:2, 2:4], [-1]))
  np.testing.assert_array_equal(mae_ops.unpatchify(patches, 2, 2, 3), images)


def test_norm_pix_targets_use_unbiased_variance():
  patches = tf.constant([[[1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0]]])
  targets = mae_ops.normalized_patches(patches).numpy()
  first = np.array([1.0, 2.0, 3.0, 4.0])
  np.testing.assert_allclose(
      targets[0, 0],
      (first - 2.5) / np.sqrt(np.var(first, ddof=1) + 1e-6), rtol=1e-6)
  np.testing.assert_array_equal(targets[0, 1], 0.0)  # eps: no NaN.


def test_loss_counts_removed_patches_only():
  images = tf.zeros([1, 2, 4, 1])  # Two 2x2 patches of one channel.
  mask = tf.constant([[1.0, 0.0]])
  # Removed patch: errors 1 and 3 on two pixels -> (1 + 9) / 4 = 2.5.
  # Kept patch: error 100 everywhere, which must not count.
  predictions = tf.constant([[[1.0, 3.0, 0.0, 0.0], [100.0] * 4]])
  loss = mae_ops.reconstruction_loss(images, predictions, mask, 2, False)
  assert float(loss) == pytest.approx(2.5)
  mask = tf.constant([[1.0, 1.0]])
  loss = mae_ops.reconstruction_loss(images, predictions, mask, 2, False)
  assert float(loss) == pytest.approx((2.5 + 10000.0) / 2)


def test_model_shapes_and_mask_ratio_zero_encoder():
  model = _tiny()
  out = model(tf.zeros([2, 32, 32, 3]))
  assert model.patch_size == 4
  assert out['predictions'].shape == (2, 64, 4 * 4 * 3)
  np.testing.assert_array_equal(out['mask'].numpy().sum(axis=1), [48, 48])
  encoder = mae.MAEEncoder(64, 1, 4, 4, mask_ratio=0.0)
  encoded = encoder(tf.zeros([2, 32, 32, 3]))
  assert encoded['latent'].shape == (2, 65, 64)
  np.testing.assert_array_equal(encoded['mask'], 0.0)


def test_layers_round_trip_through_get_config():
  model = _tiny()
  clone = mae.MaskedAutoencoder.from_config(model.get_config())
  clone(tf.zeros([1, 32, 32, 3]))
  clone.set_weights(model.get_weights())
  images = tf.random.stateless_uniform([2, 32, 32, 3], seed=[4, 5])
  noise = tf.random.stateless_uniform([2, 64], seed=[6, 7])
  np.testing.assert_allclose(
      clone(images, noise=noise)['predictions'],
      model(images, noise=noise)['predictions'], atol=1e-5)
  for layer in (model.encoder, model.decoder,
                model.encoder._transformer):  # pylint: disable=protected-access
    config = layer.get_config()
    rebuilt = type(layer).from_config(config)
    assert rebuilt.get_config() == config


def test_base_parameter_count_matches_the_reference():
  """mae_vit_base_patch16_dec512d8b (facebookresearch/mae), by arithmetic.

  D = 768, 12 blocks; a block has 12 D^2 + 13 D weights (qkv 3D^2 + 3D,
  proj D^2 + D, MLP 8 D^2 + 5 D, two LayerNorms 4 D) = 7,087,872.
  Encoder: patch conv 16*16*3*768 + 768 = 590,592; cls token 768;
  12 blocks 85,054,464; final LayerNorm 1,536 -> 85,647,360.
  Decoder (d = 512, 8 blocks of 3,152,384 = 25,219,072): embed 768*512 + 512
  = 393,728; mask token 512; LayerNorm 1,024; prediction 512*768 + 768 =
  393,984 -> 26,008,320. Trainable total 111,655,680. The reference also
  stores its fixed sin-cos codes as (frozen) parameters, 197 * (768 + 512)
  = 252,160, so counting all its parameters gives 111,907,840 (the
  "111.91M" of seed_methods.md, measured on the PyTorch model); here the
  codes are constants.
  """
  model = mae.MaskedAutoencoder((32, 32), 'base')  # Counts are size-free.
  model(tf.zeros([1, 32, 32, 3]))

  def count(layer):
    return sum(int(np.prod(v.shape)) for v in layer.trainable_variables)

  assert count(model.encoder) == 85_647_360
  assert count(model.decoder) == 26_008_320
  assert count(model) == 111_655_680
  assert count(model) + 197 * (768 + 512) == 111_907_840
  assert not model.non_trainable_variables


def ramps(num: int = 16, size: int = 32) -> tf.Tensor:
  """Linear ramps in a random direction per image: the visible patches (or
  mask units) tell the direction, so removed ones can be predicted;
  predicting zero (the per-patch mean under norm-pix) cannot."""
  rng = np.random.default_rng(0)
  y, x = np.mgrid[0:size, 0:size] / size
  images = np.zeros([num, size, size, 3], np.float32)
  for i, angle in enumerate(rng.uniform(0, 2 * np.pi, num)):
    for c in range(3):
      images[i, :, :, c] = ((c + 1) * (np.cos(angle) * x + np.sin(angle) * y)
                            + rng.normal())
  return tf.constant(images)


def short_run(build, images: tf.Tensor, patch_size: int, steps: int,
              learning_rate: float, channels_first: bool = False,
              seed: int = 0) -> tuple[float, float, float]:
  """Trains a masked autoencoder briefly; the same run wherever it runs.

  The weights are drawn after `tf_keras.utils.set_random_seed(seed)`, which
  also seeds Python's `random`: tf_keras draws an unseeded initializer's
  seed from it, so `tf.random.set_seed` alone leaves the weights to
  whatever ran before in the process. Each step's masking noise is a
  stateless draw of (seed, step), and the loss is read on one fixed held-out
  mask.

  Args:
    build: Builds the model (an MAE returning predictions and mask).
    images: The fixed training batch.
    patch_size: The target patch size.
    steps: Adam steps.
    learning_rate: Adam's learning rate.
    channels_first: Target patches as (channel, y, x) (Hiera) or not (ViT).
    seed: Seeds the weights and the masking noise.

  Returns:
    (start, zero, end): the held-out loss before and after training, and the
    loss of predicting zeros (the per-patch mean under norm_pix_loss).
  """
  tf_keras.utils.set_random_seed(seed)
  model = build()
  batch, height, width = images.shape[:3]
  units = model.num_mask_units

  def loss_of(noise):
    out = model(images, noise=noise)
    return mae_ops.reconstruction_loss(images, out['predictions'],
                                       out['mask'], patch_size, True,
                                       channels_first=channels_first)

  held_out = tf.random.stateless_uniform([batch, units], seed=[seed, -1])
  start = float(loss_of(held_out))
  tokens = (height // patch_size) * (width // patch_size)
  zero = float(mae_ops.reconstruction_loss(
      images, tf.zeros([batch, tokens, patch_size * patch_size * 3]),
      tf.ones([batch, tokens]), patch_size, True))
  optimizer = tf_keras.optimizers.Adam(learning_rate)

  @tf.function
  def train_step(noise):
    with tf.GradientTape() as tape:
      out = model(images, training=True, noise=noise)
      loss = mae_ops.reconstruction_loss(images, out['predictions'],
                                         out['mask'], patch_size, True,
                                         channels_first=channels_first)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))

  for step in range(steps):
    train_step(tf.random.stateless_uniform([batch, units], seed=[seed, step]))
  return start, zero, float(loss_of(held_out))


def test_a_short_run_does_not_depend_on_what_ran_before():
  """The order-dependence that failed CI: Python's and TF's random state."""
  build = lambda: mae.MaskedAutoencoder((32, 32), 'tiny', decoder_dim=32,
                                        decoder_depth=1, decoder_heads=4)
  first = short_run(build, ramps(), patch_size=4, steps=3,
                    learning_rate=2e-3)
  random.seed(12345)  # What other tests leave behind.
  tf.random.uniform([7])
  _tiny()
  again = short_run(build, ramps(), patch_size=4, steps=3,
                    learning_rate=2e-3)
  np.testing.assert_allclose(again, first, rtol=1e-5)


def test_reconstruction_loss_falls_in_a_short_run():
  start, zero, end = short_run(
      lambda: mae.MaskedAutoencoder((32, 32), 'tiny', decoder_dim=64,
                                    decoder_depth=2, decoder_heads=4),
      ramps(), patch_size=4, steps=60, learning_rate=2e-3)
  # Measured with this helper on a 2-vCPU AVX2 AMD EPYC (2026-12-05), seeds
  # 0-4: start 2.0-2.4, zero 0.98, end 0.075-0.103 (end/zero 0.08-0.11, a
  # 5x margin on the bound). Seeds change the weights and masks far more
  # than another CPU's rounding does. Beating the zero predictor by half
  # needs the visible patches.
  assert end < 0.7 * start
  assert end < 0.5 * zero
