"""iNatLoc500 metadata reader: a hand-made copy of the Choe et al. format."""
import glob
import json

import numpy as np
import pytest
import tensorflow as tf

from univision.data import inatloc
from univision.data import wsol_records

# Per split: path, species, (height, width), image_sizes row, boxes as
# localization.txt rows (x_min, y_min, x_max, y_max, inclusive).
_IMAGES = {
    'train': [('train/s0/t0.jpg', 0, (24, 40), None, []),
              ('train/s2/t1.jpg', 2, (30, 20), None, [])],
    'val': [('val/a/s0/v0.jpg', 0, (40, 60), (40, 60), [(5, 10, 29, 19)]),
            ('val/a/s1/v1.jpg', 1, (50, 30), (30, 50), [(3, 0, 30, 49)]),
            ('val/b/s2/v2.jpg', 2, (32, 32), (32, 32),
             [(0, 0, 15, 15), (16, 8, 31, 23)])],
    'test': [('test/a/s1/e0.jpg', 1, (36, 24), (36, 24), [(2, 4, 11, 13)]),
             ('test/a/s0/e1.jpg', 0, (20, 44), (44, 20), [(0, 0, 43, 19)])],
}
_GENUS = {0: 0, 1: 0, 2: 1}  # Apis, Apis, Bombus; one kingdom (label 0).
# Expected normalized (ymin, xmin, ymax, xmax): max = x_max + 1, clipped.
_EXPECTED_BOXES = {
    'val/a/s0/v0.jpg': [[10 / 40, 5 / 60, 20 / 40, 30 / 60]],
    'val/a/s1/v1.jpg': [[0, 3 / 30, 1, 1]],  # x_max 30 = width: clipped.
    'val/b/s2/v2.jpg': [[0, 0, .5, .5], [.25, .5, .75, 1]],
    'test/a/s1/e0.jpg': [[4 / 36, 2 / 24, 14 / 36, 12 / 24]],
    'test/a/s0/e1.jpg': [[0, 0, 1, 1]],
}


def _write_dataset(root):
  """Writes metadata (species, genus, kingdom levels) and JPEGs under root."""
  meta, images = root / 'meta', root / 'images'
  for split, rows in _IMAGES.items():
    files = {'image_ids.txt': [], 'class_labels.txt': [],
             'class_labels_genus.txt': [], 'class_labels_kingdom.txt': []}
    if split != 'train':
      files.update({'image_sizes.txt': [], 'localization.txt': []})
    for i, (path, species, (height, width), size_row, boxes) in enumerate(
        rows):
      image = np.full((height, width, 3), 30 * i + 20, np.uint8)
      image[:height // 2, :, 0] = 200  # Top half red: orientation visible.
      (images / path).parent.mkdir(parents=True, exist_ok=True)
      (images / path).write_bytes(tf.io.encode_jpeg(image).numpy())
      files['image_ids.txt'].append(path)
      files['class_labels.txt'].append(f'{path},{species}')
      files['class_labels_genus.txt'].append(f'{path},{_GENUS[species]}')
      files['class_labels_kingdom.txt'].append(f'{path},0')
      if size_row:
        files['image_sizes.txt'].append(f'{path},{size_row[0]},{size_row[1]}')
      files.get('localization.txt', []).extend(
          f'{path},{",".join(map(str, box))}' for box in boxes)
    (meta / split).mkdir(parents=True)
    for name, lines in files.items():
      (meta / split / name).write_text('\n'.join(lines) + '\n')
  (meta / 'class_names.txt').write_text(
      'Apis mellifera\nApis cerana\nBombus terrestris\n')
  (meta / 'class_names_genus.txt').write_text('1,Bombus\n0,Apis\n')
  return str(meta), str(images)


def _edit(path, old, new):
  text = path.read_text()
  assert old in text
  path.write_text(text.replace(old, new, 1))


def _read_records(output_dir, split):
  files = sorted(glob.glob(f'{output_dir}/{split}-*.tfrecord'))
  return {r['source_id'].numpy().decode(): r
          for r in map(wsol_records.decode, tf.data.TFRecordDataset(files))}


def test_records_decode_to_images_labels_and_boxes(tmp_path):
  meta, images = _write_dataset(tmp_path)
  out = str(tmp_path / 'out')
  inatloc.convert(meta, images, out, num_shards=2)
  for split, rows in _IMAGES.items():
    records = _read_records(out, split)
    assert sorted(records) == sorted(row[0] for row in rows)
    for path, species, size, _, _ in rows:
      record = records[path]
      expected = tf.io.decode_jpeg((tmp_path / 'images' / path).read_bytes())
      np.testing.assert_array_equal(record['image'], expected)
      assert record['image'].shape[:2] == size
      assert int(record['label']) == species
      np.testing.assert_allclose(record['boxes'],
                                 _EXPECTED_BOXES.get(path, np.zeros([0, 4])),
                                 atol=1e-6)


def test_hierarchy_and_reports(tmp_path):
  meta, images = _write_dataset(tmp_path)
  out = tmp_path / 'out'
  inatloc.convert(meta, images, str(out), num_shards=1)
  assert json.loads((out / 'hierarchy.json').read_text()) == {
      'levels': ['species', 'genus', 'kingdom'],
      'names': {'species': ['Apis mellifera', 'Apis cerana',
                            'Bombus terrestris'],
                'genus': ['Apis', 'Bombus'], 'kingdom': ['0']},
      'parents': {'genus': [0, 0, 1], 'kingdom': [0, 0, 0]}}
  reports = {split: json.loads((out / f'{split}_report.json').read_text())
             for split in inatloc.SPLITS}
  assert reports == {
      'train': {'images': 2, 'boxes': 0, 'sizes_as_documented': 0,
                'sizes_swapped': 0, 'sizes_square': 0},
      'val': {'images': 3, 'boxes': 4, 'sizes_as_documented': 1,
              'sizes_swapped': 1, 'sizes_square': 1},
      'test': {'images': 2, 'boxes': 2, 'sizes_as_documented': 1,
               'sizes_swapped': 1, 'sizes_square': 0}}


@pytest.mark.parametrize('row,boxes,true_size,expected', [
    ((40, 60), [(0, 0, 50, 30)], None, 'as_documented'),  # x to 50: w=60.
    ((40, 60), [(0, 0, 30, 50)], None, 'swapped'),  # y to 50: h=60.
    ((40, 60), [(0, 0, 10, 10)], None, 'swapped'),  # Fits both: (w, h).
    ((40, 60), [(0, 0, 70, 70)], None, 'swapped'),  # Fits neither: (w, h).
    ((32, 32), [(0, 0, 10, 10)], None, 'square'),
    ((40, 60), [(0, 0, 30, 50)], (40, 60), 'as_documented'),  # Size decides.
    ((60, 40), [], (40, 60), 'swapped'),
    ((32, 32), [], (32, 32), 'square'),
])
def test_size_order(row, boxes, true_size, expected):
  boxes = np.array(boxes, np.int64).reshape(-1, 4)
  assert inatloc.size_order(row, boxes, true_size) == expected


def test_size_order_rejects_a_row_matching_neither_order():
  with pytest.raises(ValueError, match=r'sizes.txt:3: size 40,61 .* 40 high '
                     r'and 60 wide'):
    inatloc.size_order((40, 61), np.zeros([0, 4]), (40, 60), 'sizes.txt:3')


@pytest.mark.parametrize('file,old,new,error,match', [
    ('test/class_labels_genus.txt', 'e0.jpg,0', 'e0.jpg,1', ValueError,
     r'test/class_labels_genus.txt:1: species 1 is genus 1 here but 0 at '
     r'.*val/class_labels_genus.txt:2'),
    ('val/class_labels.txt', 'v2.jpg,2', 'v2.jpg,3', ValueError,
     r'val/class_labels.txt:3: species label 3 has no name'),
    ('val/localization.txt', '5,10,29,19', '5,10,61,19', ValueError,
     r'val/localization.txt:1: box .* = 5,10,61,19 .* 40 high and 60 wide'),
    ('val/image_sizes.txt', 'v0.jpg,40,60', 'v0.jpg,40,61', ValueError,
     r'val/image_sizes.txt:1: size 40,61 .* 40 high and 60 wide'),
    ('val/class_labels.txt', 'val/a/s1/v1.jpg,1\n', '', ValueError,
     r'val/class_labels.txt: no row for val/a/s1/v1.jpg'),
    ('val/image_sizes.txt', 's1/v1.jpg,30,50', 's0/v0.jpg,30,50', ValueError,
     r'val/image_sizes.txt:2: second row for val/a/s0/v0.jpg'),
    ('val/image_ids.txt', 'v1.jpg', 'v1.jpg\nval/x.jpg', ValueError,
     r'val/class_labels.txt: no row for val/x.jpg'),
    ('val/image_sizes.txt', 'v1.jpg,30,50', 'v1.jpg,30', ValueError,
     r'val/image_sizes.txt:2: expected 3 comma-separated fields, got 2'),
    ('train/class_labels_kingdom.txt', 't1.jpg,0', 't1.jpg,x', ValueError,
     r'train/class_labels_kingdom.txt:2: .*not all integers'),
])
def test_errors_name_file_and_line(tmp_path, file, old, new, error, match):
  meta, images = _write_dataset(tmp_path)
  _edit(tmp_path / 'meta' / file, old, new)
  with pytest.raises(error, match=match):
    inatloc.convert(meta, images, str(tmp_path / 'out'), num_shards=1)


def test_missing_image_is_named(tmp_path):
  meta, images = _write_dataset(tmp_path)
  (tmp_path / 'images' / 'test/a/s0/e1.jpg').unlink()
  with pytest.raises(FileNotFoundError,
                     match=r'images/test/a/s0/e1.jpg .*image_ids.txt:2'):
    inatloc.convert(meta, images, str(tmp_path / 'out'), num_shards=1)


def test_read_split_keeps_rows_and_raw_sizes(tmp_path):
  meta, _ = _write_dataset(tmp_path)
  records = inatloc.read_split(meta, 'val')
  assert [r.path for r in records] == [row[0] for row in _IMAGES['val']]
  square = records[2]
  assert square.labels == {'species': 2, 'genus': 1, 'kingdom': 0}
  assert square.size_row == (32, 32)
  np.testing.assert_array_equal(square.boxes, [[0, 0, 15, 15],
                                               [16, 8, 31, 23]])
  assert [r.split(':')[-1] for r in square.box_rows] == ['3', '4']
  assert inatloc.read_split(meta, 'train')[0].boxes.shape == (0, 4)
