"""Tree-crown task: VOC reading, tiling, records; the real DeepForest files."""
import glob
import json
import os

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf
from official.vision.dataloaders import tf_example_decoder

from univision.data import tree_crowns


def _write_voc(folder, name, size, boxes, extra=''):
  """A VOC file (1-based corners) and a random PNG image next to it."""
  width, height = size
  image = np.random.default_rng(0).integers(0, 255, (height, width, 3),
                                            np.uint8)
  Image.fromarray(image).save(os.path.join(folder, f'{name}.png'))
  objects = ''.join(
      f'<object><name>Tree</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>'
      f'<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>'
      for x0, y0, x1, y1 in boxes)
  path = os.path.join(folder, f'{name}.xml')
  with open(path, 'w') as f:
    f.write(f'<annotation><filename>{name}.png</filename><size><width>{width}'
            f'</width><height>{height}</height></size>{objects}{extra}'
            '</annotation>')
  return path


def test_voc_corners_become_zero_based_exclusive(tmp_path):
  path = _write_voc(str(tmp_path), 'a', (200, 100), [(1, 1, 10, 20),
                                                      (150, 50, 200, 100)])
  annotation = tree_crowns.read_voc(path)
  np.testing.assert_array_equal(annotation.boxes, [[0, 0, 20, 10],
                                                   [49, 149, 100, 200]])
  assert annotation.names == ('Tree', 'Tree')
  assert annotation.image_path == str(tmp_path / 'a.png')


@pytest.mark.parametrize('box,match', [
    ((5, 5, 4, 9), r'b.xml object 0: box xmin=5 .* empty or outside'),
    ((5, 5, 250, 9), r'outside the 200x100 image'),
])
def test_bad_boxes_are_named(tmp_path, box, match):
  path = _write_voc(str(tmp_path), 'b', (200, 100), [box])
  with pytest.raises(ValueError, match=match):
    tree_crowns.read_voc(path)


def test_missing_coordinate_and_bad_xml_are_named(tmp_path):
  path = _write_voc(str(tmp_path), 'c', (64, 64), [], extra=(
      '<object><name>Tree</name><bndbox><xmin>1</xmin><ymin>1</ymin>'
      '<xmax>9</xmax></bndbox></object>'))
  with pytest.raises(ValueError, match=r'c.xml object 0: bndbox/ymax'):
    tree_crowns.read_voc(path)
  broken = tmp_path / 'd.xml'
  broken.write_text('<annotation>')
  with pytest.raises(ValueError, match=r'd.xml: not valid XML'):
    tree_crowns.read_voc(str(broken))


def test_tiles_keep_mostly_visible_crowns_clipped():
  image = np.arange(200 * 300 * 3, dtype=np.int64).reshape(200, 300, 3)
  boxes = np.array([[10, 10, 30, 30],      # Inside tile (0, 0) only.
                    [90, 120, 110, 140],   # Straddles the x=128 border.
                    [60, 95, 80, 170]],    # 33/75 inside tile (0, 0).
                   np.float64)
  found = {}
  for tile, kept in tree_crowns.tiles(image, boxes, 128, 128):
    top, left = int(tile[0, 0, 0]) // (300 * 3), int(tile[0, 0, 0]) // 3 % 300
    found[(top, left)] = kept
    assert tile.shape == (128, 128, 3)
  # Tiles start at 0 and end at the border: tops {0, 72}, lefts {0, 128, 172}.
  assert set(found) <= {(t, l) for t in (0, 72) for l in (0, 128, 172)}
  first = found[(0, 0)]
  # Crown 1: 8 of 20 columns inside -> dropped; crown 2: 33 of 75 -> dropped.
  np.testing.assert_array_equal(first, [[10, 10, 30, 30]])
  second = found[(0, 128)]  # Crown 1: 12 of 20 inside, kept and clipped.
  np.testing.assert_array_equal(second, [[90, 0, 110, 12], [60, 0, 80, 42]])


def test_build_writes_model_garden_records(tmp_path):
  src = tmp_path / 'src'
  src.mkdir()
  _write_voc(str(src), 'train_img', (256, 256), [(10, 10, 40, 40),
                                                  (150, 150, 190, 180)])
  _write_voc(str(src), 'val_img', (128, 128), [(5, 5, 30, 30)])
  _write_voc(str(src), 'test_img', (128, 128), [(1, 1, 64, 32),
                                                (70, 70, 90, 100)])
  out = str(tmp_path / 'trees')
  tree_crowns.build(out, str(src), ('train_img.xml',), ('val_img.xml',),
                    ('test_img.xml',))
  decoder = tf_example_decoder.TfExampleDecoder()
  read = lambda split: [decoder.decode(r) for r in tf.data.TFRecordDataset(
      sorted(glob.glob(f'{out}/{split}-*')))]
  val = read('val')
  assert len(val) == 1
  np.testing.assert_allclose(val[0]['groundtruth_boxes'].numpy(),
                             [[4 / 128, 4 / 128, 30 / 128, 30 / 128]])
  assert val[0]['groundtruth_classes'].numpy().tolist() == [1]
  assert int(val[0]['source_id']) == 100_000
  test = read('test')
  assert len(test) == 1 and int(test[0]['source_id']) == 200_000
  np.testing.assert_allclose(test[0]['groundtruth_boxes'].numpy() * 128,
                             [[0, 0, 32, 64], [69, 69, 100, 90]])
  train = read('train')
  # Tiles every 64 px over 256 px: 3 x 3 starts, those holding a crown.
  assert 1 <= len(train) <= 9
  assert all(len(t['groundtruth_classes']) >= 1 for t in train)
  with open(f'{out}/label_map.json') as f:
    assert json.load(f) == {'1': 'tree'}


def test_an_image_in_two_splits_is_named(tmp_path):
  with pytest.raises(ValueError, match='b.xml is in both the val and the '
                     'test split'):
    tree_crowns.build(str(tmp_path), str(tmp_path), ('a.xml',), ('b.xml',),
                      ('b.xml',))
  assert not os.listdir(tmp_path)  # Refused before writing anything.


def test_reads_the_real_deepforest_annotations():
  try:
    data_dir = tree_crowns.deepforest_data_dir()
  except FileNotFoundError:
    pytest.fail(f'deepforest data missing: {tree_crowns.INSTALL_HINT} '
                '(the Makefile installs it)')
  splits = (tree_crowns.TRAIN_IMAGES, tree_crowns.VAL_IMAGES,
            tree_crowns.TEST_IMAGES)
  names = [name for split in splits for name in split]
  assert len(set(names)) == len(names)  # Disjoint splits.
  counts = {name: len(tree_crowns.read_voc(os.path.join(data_dir, name)).boxes)
            for name in names}
  # The numbers of <object> elements in deepforest 2.1.0's files: all four
  # annotated files are used.
  assert counts == {'2019_YELL_2_528000_4978000_image_crop2.xml': 574,
                    'OSBS_029.xml': 61, 'SOAP_061.xml': 37,
                    '2019_YELL_2_541000_4977000_image_crop.xml': 279}
  assert sorted(counts) == sorted(
      n for n in os.listdir(data_dir) if n.endswith('.xml'))
