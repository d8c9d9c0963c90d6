"""Tests for R-MAE: FH regions, region sampling, shared mask, BCE, learning."""
import numpy as np
import pytest
import skimage.data
import skimage.transform
import tensorflow as tf, tf_keras

from univision.data import fh_regions
from univision.dataloaders import rmae_input
from univision.modeling import mae_ops
from univision.modeling import rmae


def _tiny(num_regions: int = 3) -> rmae.RegionMaskedAutoencoder:
  model = rmae.RegionMaskedAutoencoder(
      (32, 32), 'tiny', decoder_dim=32, decoder_depth=1, decoder_heads=4,
      num_regions=num_regions, region_enc_dim=16, region_enc_heads=2,
      region_dec_dim=16, region_dec_heads=2, region_cross_depth=1)
  model(_inputs(num_regions, seed=0))
  return model


def _inputs(num_regions: int, seed: int, batch: int = 2) -> dict:
  return {'images': tf.random.stateless_normal([batch, 32, 32, 3],
                                               seed=[seed, 0]),
          'regions': tf.cast(tf.random.stateless_uniform(
              [batch, num_regions, 32, 32], seed=[seed, 1]) < 0.5,
                             tf.float32)}


def test_fh_recovers_the_segments_of_a_hand_made_image():
  image = np.zeros((32, 32, 3), np.uint8)
  image[:16, 16:] = 200
  image[16:, :16] = 100
  image[16:, 16:] = (0, 0, 255)
  labels = fh_regions.segment(image, fh_regions.FHParams(100, 0.0, 20))
  assert labels.dtype == np.uint16
  quadrants = [labels[:16, :16], labels[:16, 16:], labels[16:, :16],
               labels[16:, 16:]]
  assert all(len(np.unique(q)) == 1 for q in quadrants)
  assert len({int(q[0, 0]) for q in quadrants}) == 4


def test_fh_on_a_bundled_photo_respects_min_size():
  image = (skimage.transform.resize(skimage.data.astronaut(), (128, 128)) *
           255).astype(np.uint8)
  labels = fh_regions.segment(image, fh_regions.FHParams(1000, 0.8, 200))
  counts = np.bincount(labels.ravel())
  assert len(counts) == labels.max() + 1 >= 2  # Ids are 0 .. n-1.
  assert counts.min() >= 200  # No segment below min_size.


def test_region_sampling_repeats_when_fewer_than_k():
  labels = tf.constant(np.repeat([[3, 7, 9]], 4, axis=0))  # 3 segments.
  maps = rmae_input.sample_region_maps(labels, 8, training=True).numpy()
  assert maps.shape == (8, 4, 3) and set(np.unique(maps)) == {0.0, 1.0}
  # Each map is exactly one segment; 3 ids cycled ceil(8/3) = 3 times, so
  # every id appears 2 or 3 times.
  chosen = maps.argmax(axis=2)[:, 0]
  np.testing.assert_array_equal(maps.sum(axis=(1, 2)), 4.0)
  assert sorted(np.bincount(chosen, minlength=3)) in ([2, 3, 3],)
  # Validation: ids in increasing order, cycled.
  val = rmae_input.sample_region_maps(labels, 5, training=False).numpy()
  np.testing.assert_array_equal(val.argmax(axis=2)[:, 0], [0, 1, 2, 0, 1])


def test_region_sampling_draws_distinct_segments_when_enough():
  labels = tf.reshape(tf.range(12), [3, 4])  # 12 one-pixel segments.
  for seed in range(5):
    tf.random.set_seed(seed)
    maps = rmae_input.sample_region_maps(labels, 4, training=True).numpy()
    flat = maps.reshape(4, -1).argmax(axis=1)
    assert len(set(flat)) == 4


def test_both_branches_see_exactly_the_same_visible_patches():
  model = _tiny()
  inputs = _inputs(3, seed=1)
  noise = tf.random.stateless_uniform([2, 64], seed=[5, 6])
  out = model(inputs, noise=noise)
  mask = out['mask'].numpy()
  assert mask.sum(axis=1).tolist() == [48.0, 48.0]
  patch_mask = mae_ops.unpatchify(
      tf.repeat(out['mask'][..., None], 16, axis=-1), 4, 8, 8)[..., 0]
  # Changing the removed patches of images and region maps changes nothing.
  hidden = tf.cast(patch_mask, tf.float32)
  changed = {'images': inputs['images'] + 5.0 * hidden[..., None],
             'regions': tf.abs(inputs['regions'] - hidden[:, None])}
  again = model(changed, noise=noise)
  for key in ('predictions', 'region_logits'):
    np.testing.assert_allclose(again[key], out[key], atol=1e-5)
  # Changing one visible patch of the region maps changes the region output.
  row, col = divmod(int(np.argmin(mask[0])), 8)
  visible = np.zeros([2, 1, 32, 32], np.float32)
  visible[0, 0, 4 * row:4 * row + 4, 4 * col:4 * col + 4] = 1.0
  moved = model({'images': inputs['images'],
                 'regions': tf.abs(inputs['regions'] - visible)},
                noise=noise)
  assert not np.allclose(moved['region_logits'][0], out['region_logits'][0])


def test_region_bce_counts_only_removed_patches_by_hand():
  # One image, k = 2, a 4x4 image with 2x2 patches: N = 4, p * p = 4.
  regions = np.zeros([1, 2, 4, 4], np.float32)
  regions[0, 0, :2, :] = 1.0  # Region 0: top row of patches.
  regions[0, 1, :, :2] = 1.0  # Region 1: left column of patches.
  logits = np.zeros([1, 2, 4, 4], np.float32)
  logits[0, 0, 1] = 2.0  # Patch 1 (top right) of region 0: target 1.
  logits[0, 1, 3] = 3.0  # Patch 3 (bottom right) of region 1: target 0.
  mask = np.array([[0, 1, 0, 1]], np.float32)  # Patches 1 and 3 removed.
  softplus = lambda x: np.log1p(np.exp(x))
  bce = lambda z, y: softplus(z) - y * z  # BCE with logits.
  patch1 = (bce(2.0, 1.0) + bce(0.0, 0.0)) / 2  # Regions 0 and 1.
  patch3 = (bce(0.0, 0.0) + bce(3.0, 0.0)) / 2
  expected = (patch1 + patch3) / 2
  loss = rmae.region_loss(regions, logits, mask, 2)
  assert float(loss) == pytest.approx(expected, rel=1e-6)
  # Visible patches do not count, whatever their logits.
  logits[0, :, 0] = 50.0
  logits[0, :, 2] = -50.0
  assert float(rmae.region_loss(regions, logits, mask, 2)) == pytest.approx(
      expected, rel=1e-6)


def test_config_round_trip_and_registration():
  model = _tiny(num_regions=2)
  config = model.get_config()
  assert config['num_regions'] == 2 and config['region_cross_depth'] == 1
  clone = tf_keras.utils.deserialize_keras_object(
      tf_keras.utils.serialize_keras_object(model))
  assert isinstance(clone, rmae.RegionMaskedAutoencoder)
  clone(_inputs(2, seed=0))
  assert clone.count_params() == model.count_params()
  for layer in (model.region_encoder, model.region_decoder):
    assert type(layer).from_config(layer.get_config()).get_config() == (
        layer.get_config())
  with pytest.raises(ValueError, match='num_regions must be >= 1'):
    rmae.RegionMaskedAutoencoder((32, 32), 'tiny', num_regions=0)


def _region_run(seed: int, steps: int) -> tuple[float, float, float]:
  """A short R-MAE run on a tiny fixed set; the same run wherever it runs.

  Every image has a bright 12x12 square at a random place; its region maps
  are the square and the background. The weights are drawn after
  `tf_keras.utils.set_random_seed` (tf_keras seeds unseeded initializers
  from Python's `random`), each step's mask is a stateless draw of (seed,
  step) and the loss is read on one fixed held-out mask. The learning rate
  decays to 0 (cosine), so the end is not caught on one of the loss spikes
  a constant rate gives.

  Returns:
    (first, last, entropy): the held-out region loss before and after
    training, and the best constant guesses' loss: one constant per region
    slot (the slot's pixel fraction on the removed patches), scoring that
    fraction's entropy.
  """
  rng = np.random.default_rng(0)
  images = np.zeros([16, 32, 32, 3], np.float32)
  regions = np.zeros([16, 2, 32, 32], np.float32)
  for i in range(16):
    row, col = rng.integers(0, 9, 2) * 4
    images[i, row:row + 12, col:col + 12] = 1.0
    regions[i, 0, row:row + 12, col:col + 12] = 1.0
    regions[i, 1] = 1.0 - regions[i, 0]
  inputs = {'images': tf.constant(images), 'regions': tf.constant(regions)}
  tf_keras.utils.set_random_seed(seed)
  model = _tiny(num_regions=2)
  optimizer = tf_keras.optimizers.Adam(
      tf_keras.optimizers.schedules.CosineDecay(2e-3, steps))

  @tf.function
  def step(noise):
    with tf.GradientTape() as tape:
      out = model(inputs, training=True, noise=noise)
      loss = rmae.region_loss(inputs['regions'], out['region_logits'],
                              out['mask'], 4) + mae_ops.reconstruction_loss(
                                  inputs['images'], out['predictions'],
                                  out['mask'], 4, norm_pix_loss=False)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))

  held_out = tf.random.stateless_uniform([16, 64], seed=[seed, -1])
  out = model(inputs, noise=held_out)
  first = float(rmae.region_loss(regions, out['region_logits'], out['mask'],
                                 4))
  for i in range(steps):
    step(tf.random.stateless_uniform([16, 64], seed=[seed, i]))
  out = model(inputs, noise=held_out)
  last = float(rmae.region_loss(regions, out['region_logits'], out['mask'],
                                4))
  targets = mae_ops.patchify(tf.reshape(regions, [-1, 32, 32, 1]), 4)
  targets = tf.reshape(targets, [16, 2, 64, 16]).numpy()
  removed = out['mask'].numpy().astype(bool)
  fractions = targets.transpose(0, 2, 1, 3)[removed].mean(axis=(0, 2))
  entropy = -np.mean(fractions * np.log(fractions) +
                     (1 - fractions) * np.log(1 - fractions))
  return first, last, entropy


def test_region_loss_falls_below_the_best_constant_guess():
  """A short run must beat the best constant guesses clearly.

  Only finding the square from the visible patches gets well below them.
  """
  first, last, entropy = _region_run(seed=0, steps=1000)
  # Measured with this helper on a 2-vCPU AVX2 AMD EPYC (2026-12-05), seeds
  # 0-4: last / entropy 0.34-0.54 (seed 0: 0.54), flat over the last 300
  # steps: a 1.5x margin on the 0.8 bound. The run it replaces (400 steps at
  # a constant 3e-3, masks from the suite's random state) gave 0.62-0.79
  # over the same seeds: seed 0 passed by 1.5%. Seeds change the weights
  # and masks far more than another CPU's rounding does.
  assert last < 0.8 * entropy < first, (first, last, entropy)
