"""WSOL composites: one item per image, exact box and mask, the hierarchy."""
import numpy as np
import pytest
import tensorflow as tf

from tests import conftest

from univision.data import detection_composites
from univision.data import fashion_mnist
from univision.data import label_hierarchy
from univision.data import wsol_composites
from univision.data import wsol_records


def test_coarse_groups_follow_the_fashion_mnist_classes():
  h = wsol_composites.HIERARCHY
  coarse = dict(zip(fashion_mnist.CLASS_NAMES,
                    (h.names['coarse'][p] for p in h.table('coarse'))))
  assert coarse['sneaker'] == coarse['ankle boot'] == 'footwear'
  assert coarse['coat'] == coarse['shirt'] == 'tops'
  assert coarse['bag'] == 'bags' and coarse['trouser'] == 'bottoms & dresses'


def test_box_is_the_tight_box_of_the_mask(fake_fmnist_source):
  images, labels = fashion_mnist.load(fake_fmnist_source)['train']
  bank = detection_composites.ObjectBank(images, labels)
  photo = np.full((64, 64, 3), 7, np.uint8)
  rng = np.random.default_rng(0)
  for _ in range(5):
    image, label, box, mask = wsol_composites.compose(rng, bank, [photo], 48,
                                                      (16, 32))
    rows, cols = np.nonzero(mask)
    assert box.tolist() == [rows.min(), cols.min(), rows.max() + 1,
                            cols.max() + 1]
    assert 0 <= label < 10 and image.shape == (48, 48, 3)
    assert (image[~mask] == 7).all()  # Only the item's pixels changed.
  with pytest.raises(ValueError, match="no 'bag' item"):
    detection_composites.ObjectBank(images[:0], labels[:0]).sample(
        rng, 'bag', 20)


def test_build_writes_three_splits_and_the_hierarchy(tmp_path):
  # Enough fake test images that every class has items.
  source = conftest.make_fake_fashion_mnist(str(tmp_path / 'src'),
                                            num_test=96)
  out = str(tmp_path / 'wsol')
  written = wsol_composites.build(out, num_train=6, num_eval=4,
                                  image_size=48, object_size=(16, 32),
                                  source_dir=source)
  assert sorted(written) == ['test', 'train', 'val']
  assert label_hierarchy.load(f'{out}/hierarchy.json') == (
      wsol_composites.HIERARCHY)
  records = list(tf.data.TFRecordDataset(written['val']).map(
      wsol_records.decode))
  assert len(records) == 4
  for r in records:
    assert r['has_mask'] and r['boxes'].shape == (1, 4)
    ymin, xmin, ymax, xmax = (r['boxes'][0].numpy() * 48).round().astype(int)
    mask = r['mask'][..., 0].numpy().astype(bool)
    rows, cols = np.nonzero(mask)
    assert (ymin, xmin, ymax, xmax) == (rows.min(), cols.min(),
                                        rows.max() + 1, cols.max() + 1)
