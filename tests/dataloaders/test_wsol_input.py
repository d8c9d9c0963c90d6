"""WSOL parser: level labels, Hide-and-Seek, inclusive boxes, masks."""
import numpy as np
import pytest
import tensorflow as tf

from univision.data import label_hierarchy
from univision.dataloaders import wsol_input

H = label_hierarchy.LabelHierarchy(
    levels=('fine', 'coarse'), names={'fine': ('a', 'b', 'c'),
                                      'coarse': ('x', 'y')},
    parents={'coarse': (1, 0, 1)})


def _decoded(label=2):
  mask = np.zeros((20, 40, 1), np.uint8)
  mask[5:10, 10:30] = 1
  part = np.zeros((20, 40, 1), np.uint8)
  part[6:8, 12:16] = 1
  return {'image': tf.fill([20, 40, 3], tf.constant(100, tf.uint8)),
          'label': tf.constant(label, tf.int64),
          'boxes': tf.constant([[0.25, 0.25, 0.5, 0.75]]),
          'mask': tf.constant(mask), 'has_mask': tf.constant(True),
          'part_mask': tf.constant(part), 'has_part': tf.constant(True)}


def test_training_gives_the_label_at_the_level():
  for level, expected in (('fine', 2), ('coarse', 1)):
    parser = wsol_input.Parser([10, 20], H, level, aug_rand_hflip=False)
    image, label = parser.parse_fn(True)(_decoded())
    assert int(label) == expected and image.shape == (10, 20, 3)
  with pytest.raises(ValueError, match="Unknown label level 'genus'"):
    wsol_input.Parser([10, 20], H, 'genus')


def test_evaluation_boxes_are_inclusive_pixels_at_the_input_size():
  parser = wsol_input.Parser([10, 20], H, 'coarse', max_boxes=3)
  image, labels = parser.parse_fn(False)(_decoded())
  # y 0.25..0.5 of 10 rows -> rows 2.5..5 -> pixels 2..4; x 5..15 -> 5..14.
  np.testing.assert_array_equal(labels['boxes'].numpy(),
                                [[5, 2, 14, 4], [-1] * 4, [-1] * 4])
  assert int(labels['num_boxes']) == 1
  assert int(labels['label']) == 1 and int(labels['fine_label']) == 2
  mask = labels['mask'].numpy()
  assert mask.shape == (10, 20) and mask[3, 10] and not mask[0, 0]
  part = labels['part_mask'].numpy()
  assert bool(labels['has_part']) and part.shape == (10, 20)
  assert part[3, 6] and part.sum() == 2 and (part <= mask).all()


def test_inclusive_boxes_on_pixel_edges():
  boxes, count = wsol_input.inclusive_pixel_boxes(
      tf.constant([[0.0, 0.0, 1.0, 1.0], [0.1, 0.2, 0.3, 0.4]]), 10, 10, 1)
  np.testing.assert_array_equal(boxes.numpy(), [[0, 0, 9, 9]])
  assert int(count) == 1


def test_hide_and_seek_hides_whole_cells():
  image = tf.ones([8, 12, 3])
  hidden = wsol_input.hide_patches(image, 4, 0.5, seed=tf.constant([1, 2]))
  cells = hidden.numpy()[..., 0].reshape(2, 4, 3, 4).transpose(0, 2, 1, 3)
  for cell in cells.reshape(6, 16):
    assert cell.min() == cell.max()  # Each 4x4 cell kept or hidden whole.
  assert 0 < hidden.numpy().mean() < 1  # This seed hides some, not all.
  assert wsol_input.hide_patches(image, 4, 0.0).numpy().min() == 1.0
  assert wsol_input.hide_patches(image, 4, 1.0).numpy().max() == 0.0


def test_cutmix_pastes_one_box_and_mixes_labels_by_its_pixel_share():
  images = tf.stack([tf.fill([16, 20, 1], float(i)) for i in range(4)])
  labels = tf.constant([0, 1, 2, 3])
  mixed_seen = 0
  for i in range(20):
    mixed, soft = wsol_input.cutmix(images, labels, num_classes=5,
                                    seed=tf.constant([9, i]))
    mixed, soft = mixed.numpy(), soft.numpy()
    np.testing.assert_allclose(soft.sum(1), 1.0, rtol=1e-6)
    for b in range(4):
      own = mixed[b, ..., 0] == b
      share = 1.0 - own.mean()
      partner = int(mixed[b][~own][0, 0]) if share else b
      # The same box in every image; the labels weigh the pasted pixels.
      if share:
        mixed_seen += 1
        assert np.isclose(soft[b, partner], share, atol=1e-6)
        assert np.isclose(soft[b, b], 1.0 - share, atol=1e-6)
        rows, cols = np.nonzero(~own)
        assert (~own)[rows.min():rows.max() + 1,
                      cols.min():cols.max() + 1].all()  # A rectangle.
      else:  # Unmixed, or mixed with itself.
        assert np.isclose(soft[b, b], 1.0, atol=1e-6)
  assert mixed_seen > 0
  # Probability 0: the batch passes through with one-hot labels.
  same, one_hot = wsol_input.cutmix(images, labels, 5, probability=0.0)
  np.testing.assert_array_equal(same, images)
  np.testing.assert_array_equal(one_hot, np.eye(5)[:4])
