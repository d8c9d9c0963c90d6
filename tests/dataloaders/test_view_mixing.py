"""Tests for dynamic dataset mixing: proportions, disabled views, Mixup."""
import numpy as np
import pytest
import tensorflow as tf

from univision.dataloaders import view_mixing

NUM_CLASSES = 5


def _parse_fn(offset: float):
  """A parse function whose images are `offset` + class id everywhere."""
  def parse(decoded):
    label = decoded['label']
    image = tf.fill([4, 4, 3], offset + tf.cast(label, tf.float32))
    return image, label
  return parse


def _mixer(weights, batch_size=64):
  return view_mixing.ViewMixer(
      plain_parse_fn=_parse_fn(0.0), randaugment_parse_fn=_parse_fn(100.0),
      weights=weights, num_classes=NUM_CLASSES, mixup_alpha=1.0,
      global_batch_size=batch_size)


def _examples(n):
  return tf.data.Dataset.from_tensor_slices(
      {'label': tf.range(n, dtype=tf.int32) % NUM_CLASSES})


def _views(weights, n):
  dataset = _examples(n).map(_mixer(weights).parse)
  return np.concatenate([v.numpy() for _, _, v in dataset.batch(1000)])


def test_realized_mix_matches_weights():
  n = 6000
  weights = (2.0, 1.0, 1.0)
  counts = np.bincount(_views(weights, n), minlength=3)
  expected = np.array(weights) / sum(weights)
  # Four binomial standard deviations: fails by chance about once in 10^4.
  tolerance = 4 * np.sqrt(expected * (1 - expected) / n)
  np.testing.assert_array_less(np.abs(counts / n - expected), tolerance)


@pytest.mark.parametrize('weights, absent', [
    ((1.0, 0.0, 1.0), view_mixing.RANDAUGMENT),
    ((0.0, 1.0, 1.0), view_mixing.PLAIN),
    ((1.0, 1.0, 0.0), view_mixing.EXTREME_MIXUP),
])
def test_zero_weight_disables_a_view(weights, absent):
  views = _views(weights, 2000)
  assert absent not in views
  assert len(set(views)) == 2


def test_parse_uses_the_view_pipeline():
  for image, label, view in _examples(200).map(_mixer((1, 1, 0)).parse):
    offset = 100.0 if view == view_mixing.RANDAUGMENT else 0.0
    assert float(image[0, 0, 0]) == offset + float(label)


def test_mixup_examples_get_mixed_images_and_labels():
  mixer = _mixer((1.0, 0.0, 1.0), batch_size=32)
  dataset = mixer.batch(_examples(320).map(mixer.parse))
  class_values = np.arange(NUM_CLASSES, dtype=np.float32)
  num_mixed = 0
  for images, labels in dataset:
    assert images.shape == (32, 4, 4, 3) and labels.shape == (32, NUM_CLASSES)
    np.testing.assert_allclose(labels.numpy().sum(-1), 1.0, rtol=1e-5)
    # Plain images hold their class id; a Mixup image is the mix of the
    # class ids with the weights of its label.
    np.testing.assert_allclose(images[:, 0, 0, 0],
                               labels.numpy() @ class_values,
                               rtol=1e-4, atol=1e-4)
    num_mixed += int(np.sum(labels.numpy().max(-1) < 0.999))
  # Half draw Mixup; a fifth of those are mixed with their own class.
  assert 0.25 * 320 < num_mixed < 0.55 * 320


def test_without_mixup_labels_are_one_hot():
  mixer = _mixer((1.0, 1.0, 0.0), batch_size=16)
  for _, labels in mixer.batch(_examples(64).map(mixer.parse)):
    assert set(np.unique(labels.numpy())) <= {0.0, 1.0}


def test_bad_weights_are_named():
  with pytest.raises(ValueError, match=r'weights .* non-negative'):
    _mixer((1.0, -1.0, 0.0))
  with pytest.raises(ValueError, match=r'weights .* not all 0'):
    view_mixing.check_weights((0.0, 0.0, 0.0), 'task.mixing')
