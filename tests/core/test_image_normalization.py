"""An experiment's own mean and std on top of Model Garden's."""
import numpy as np
import pytest
import tensorflow as tf

from univision.core import image_normalization


def test_model_gardens_own_normalization_is_left_alone():
  image = tf.constant(np.random.default_rng(0).normal(size=(4, 4, 3)),
                      tf.float32)
  out = image_normalization.renormalize(
      image, image_normalization.MODEL_GARDEN_MEAN,
      image_normalization.MODEL_GARDEN_STD)
  assert out is image


def test_another_mean_and_std_is_an_exact_affine_map():
  pixels = np.random.default_rng(1).uniform(0, 255, (2, 3, 3, 3))
  mg = ((pixels - image_normalization.MODEL_GARDEN_MEAN) /
        image_normalization.MODEL_GARDEN_STD)
  out = image_normalization.renormalize(
      tf.constant(mg, tf.bfloat16), [127.5] * 3, [127.5] * 3)
  assert out.dtype == tf.bfloat16
  np.testing.assert_allclose(tf.cast(out, tf.float32),
                             pixels / 127.5 - 1.0, atol=2e-2)
  out = image_normalization.renormalize(tf.constant(mg, tf.float32),
                                        [127.5] * 3, [127.5] * 3)
  np.testing.assert_allclose(out, pixels / 127.5 - 1.0, atol=1e-5)


@pytest.mark.parametrize('mean, std', [([1.0, 2.0], [1.0] * 3),
                                       ([0.0] * 3, [1.0, 0.0, 1.0])])
def test_bad_normalization_is_named(mean, std):
  with pytest.raises(ValueError, match='need 3 values each, std > 0'):
    image_normalization.renormalize(tf.zeros([2, 2, 3]), mean, std)
