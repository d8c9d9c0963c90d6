"""WSOL parts data: three levels, the finest decided by a small marker."""
import numpy as np
import pytest
import tensorflow as tf

from tests import conftest

from univision.data import detection_composites
from univision.data import fashion_mnist
from univision.data import label_hierarchy
from univision.data import wsol_composites
from univision.data import wsol_parts
from univision.data import wsol_records


def test_hierarchy_marked_shape_family():
  h = wsol_parts.HIERARCHY
  assert h.levels == ('marked', 'shape', 'family')
  assert [h.num_classes(level) for level in h.levels] == [30, 10, 4]
  assert h.names['marked'][3 * 9 + 2] == 'ankle boot, blue marker'
  np.testing.assert_array_equal(h.table('shape'), np.arange(30) // 3)
  np.testing.assert_array_equal(
      h.table('family'),
      wsol_composites.HIERARCHY.table('coarse')[np.arange(30) // 3])


def test_marker_spot_lies_inside_the_silhouette():
  mask = np.zeros((10, 12), bool)
  mask[2:7, 3:11] = True
  mask[4, 6] = False  # A hole.
  rng = np.random.default_rng(0)
  for _ in range(20):
    top, left = wsol_parts.marker_spot(rng, mask, 3)
    assert mask[top:top + 3, left:left + 3].all()
  assert wsol_parts.marker_spot(rng, mask, 6) is None
  assert wsol_parts.marker_spot(rng, mask, 13) is None


def test_object_is_grey_and_the_marker_colour_is_the_label(
    fake_fmnist_source):
  images, labels = fashion_mnist.load(fake_fmnist_source)['train']
  bank = detection_composites.ObjectBank(images, labels)
  photo = np.full((64, 64, 3), 7, np.uint8)
  rng = np.random.default_rng(1)
  colours = list(wsol_parts.MARKERS.values())
  for _ in range(8):
    image, label, box, mask, marker = wsol_parts.compose(
        rng, bank, [photo], 64, (24, 48), 0.15)
    assert marker.sum() >= wsol_parts.MIN_MARKER ** 2
    assert (marker <= mask).all()  # The marker is on the object.
    assert (image[marker] == colours[label % 3]).all()
    body = mask & ~marker
    assert (image[body][:, 0] == image[body][:, 1]).all()
    assert (image[body][:, 1] == image[body][:, 2]).all()
    assert (image[~mask] == 7).all()
    rows, cols = np.nonzero(mask)
    assert box.tolist() == [rows.min(), cols.min(), rows.max() + 1,
                            cols.max() + 1]


def test_build_writes_part_masks_and_is_deterministic(tmp_path):
  source = conftest.make_fake_fashion_mnist(str(tmp_path / 'src'),
                                            num_test=96)
  decoded = []
  for run in ('a', 'b'):
    out = str(tmp_path / run)
    written = wsol_parts.build(out, num_train=6, num_eval=5, image_size=64,
                               object_size=(24, 48), source_dir=source)
    assert label_hierarchy.load(f'{out}/hierarchy.json') == (
        wsol_parts.HIERARCHY)
    decoded.append(list(tf.data.TFRecordDataset(written['test']).map(
        wsol_records.decode)))
  first, second = decoded
  assert len(first) == 5
  for a, b in zip(first, second):
    for key in ('image', 'label', 'boxes', 'mask', 'part_mask'):
      np.testing.assert_array_equal(a[key], b[key])
    assert a['has_mask'] and a['has_part']
    part, mask = a['part_mask'].numpy() > 0, a['mask'].numpy() > 0
    assert part.any() and (part <= mask).all()
  with pytest.raises(ValueError, match='marker_fraction'):
    wsol_parts.build(str(tmp_path / 'c'), marker_fraction=0.0,
                     source_dir=source)
