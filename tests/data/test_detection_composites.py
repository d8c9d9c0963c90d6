"""Composite detection tasks: exact boxes, Model Garden's record format."""
import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from official.vision.dataloaders import tf_example_decoder

from univision.data import detection_composites as dc
from univision.data import fashion_mnist
from univision.data import tfrecords

# The tasks that existed before the test split, in the order whose position
# numbered their random streams.
ORIGINAL_TASKS = ('footwear_on_textures', 'horses_and_bags',
                  'small_items_on_scenery', 'tops_on_photos')


@pytest.fixture(scope='module')
def bank(fake_fmnist_source):
  images, labels = fashion_mnist.load(fake_fmnist_source)['train']
  return dc.ObjectBank(images, labels)


def _decode(paths):
  decoder = tf_example_decoder.TfExampleDecoder()
  return [decoder.decode(r) for r in tf.data.TFRecordDataset(paths)]


@pytest.mark.parametrize('task', sorted(dc.TASKS))
def test_boxes_are_the_tight_boxes_of_the_pasted_objects(bank, task):
  spec = dc.TASKS[task]
  # On a black photo every non-black pixel belongs to an object, so each box
  # must touch its object's pixels on all four sides, and no object pixel
  # may lie outside the boxes.
  black = dataclasses.replace(spec, backgrounds=('black',))
  photos = {'black': np.zeros((300, 300, 3), np.uint8)}
  rng = np.random.default_rng(0)
  for _ in range(10):
    image, boxes, labels = dc.compose(rng, black, bank, photos)
    assert image.shape == (spec.image_size, spec.image_size, 3)
    assert len(boxes) >= 1
    assert set(labels) <= set(range(1, len(spec.classes) + 1))
    painted = image.max(axis=-1) > 0
    covered = np.zeros_like(painted)
    for i, (y0, x0, y1, x1) in enumerate(boxes):
      inside = painted[y0:y1, x0:x1]
      assert inside[0].any() and inside[-1].any()
      assert inside[:, 0].any() and inside[:, -1].any()
      covered[y0:y1, x0:x1] = True
      assert max(y1 - y0, x1 - x0) <= spec.object_size[1]
      for b in boxes[:i]:  # No two objects overlap.
        assert y1 <= b[0] or b[2] <= y0 or x1 <= b[1] or b[3] <= x0
    assert not (painted & ~covered).any()


def test_every_task_has_a_stream_and_patch_tasks_at_most_four_labels():
  assert sorted(dc.STREAMS) == sorted(dc.TASKS)
  assert dc.STREAMS[:len(ORIGINAL_TASKS)] == ORIGINAL_TASKS
  assert all(1 <= len(s.classes) <= 4 for name, s in dc.TASKS.items()
             if name != 'crowded_clothing')
  assert dc.TASKS['base_clothing'].num_train == 3000


def test_crowded_clothing_has_eleven_classes_and_crowded_images(bank):
  spec = dc.TASKS['crowded_clothing']
  assert len(spec.classes) == 11 and spec.num_train == 3000
  photos = {name: dc.rgb(dc.BACKGROUNDS[name]()) for name in spec.backgrounds}
  rng = dc.split_rng('crowded_clothing', 'val')
  labels = [dc.compose(rng, spec, bank, photos)[2] for _ in range(40)]
  assert min(len(l) for l in labels) >= 4
  assert max(len(l) for l in labels) <= 8
  assert np.mean([len(set(l.tolist())) for l in labels]) >= 3
  assert set(np.concatenate(labels).tolist()) == set(range(1, 12))


def test_min_objects_that_cannot_fit_are_an_error():
  spec = dc.TaskSpec(('bag',), ('black',), (40, 40), min_objects=8,
                     max_objects=8, image_size=64)
  photos = {'black': np.zeros((64, 64, 3), np.uint8)}
  class Square40:
    def sample(self, rng, name, size):
      del rng, name, size
      return np.ones((40, 40)), np.ones((40, 40), bool)

  with pytest.raises(ValueError, match='8 objects of .* do not fit in 64'):
    dc.compose(np.random.default_rng(0), spec, Square40(), photos)


class _ClassShapedBank:
  """Solid objects 8 high whose width is 1 + their class's index."""

  def sample(self, rng, name, size):
    del rng, size
    mask = np.ones((8, 1 + dc.OBJECT_CLASSES.index(name)), bool)
    return mask.astype(np.float64), mask


def test_base_clothing_labels_stand_for_their_groups():
  spec = dataclasses.replace(dc.TASKS['base_clothing'],
                             backgrounds=('black',))
  photos = {'black': np.zeros((64, 64, 3), np.uint8)}
  rng = np.random.default_rng(0)
  label_of = {}
  for _ in range(60):
    _, boxes, labels = dc.compose(rng, spec, _ClassShapedBank(), photos)
    for box, label in zip(boxes, labels):
      label_of.setdefault(dc.OBJECT_CLASSES[box[3] - box[1] - 1], set()).add(
          int(label))
  assert label_of == {
      't-shirt/top': {1}, 'pullover': {1}, 'shirt': {1}, 'coat': {1},
      'trouser': {2}, 'dress': {2},
      'sandal': {3}, 'sneaker': {3}, 'ankle boot': {3}, 'bag': {4}}


def test_a_label_of_one_class_draws_no_random_number():
  rng = np.random.default_rng(0)
  state = rng.bit_generator.state
  assert dc.TASKS['tops_on_photos'].object_class(rng, 2) == 'shirt'
  assert rng.bit_generator.state == state
  assert dc.TASKS['base_clothing'].object_class(rng, 3) == 'bag'
  assert rng.bit_generator.state == state


@pytest.mark.parametrize('kwargs,match', [
    (dict(classes=('cat',)), "Unknown object class 'cat'"),
    (dict(classes=('top',), groups={'top': ('shirt', 't-shirt')}),
     "Unknown object class 't-shirt' \\(label 'top'\\)"),
    (dict(classes=('bag',), groups={'top': ('shirt',)}),
     r"groups\['top'\] is not a label"),
    (dict(classes=(*dc.DIGITS, 'bag', 'coat')),
     'A task has 1 to 11 labels, got 12'),
    (dict(classes=('bag',), min_objects=5),
     r'min_objects 5 must be in 1..max_objects \(4\)'),
    (dict(classes=('bag',), min_objects=0), 'min_objects 0 must be'),
])
def test_bad_task_spec_is_named(kwargs, match):
  with pytest.raises(ValueError, match=match):
    dc.TaskSpec(backgrounds=('brick',), object_size=(8, 16), **kwargs)


def test_composites_use_real_photos(bank):
  spec = dc.TASKS['tops_on_photos']
  photos = {n: dc.rgb(dc.BACKGROUNDS[n]()) for n in spec.backgrounds}
  image, _, _ = dc.compose(np.random.default_rng(1), spec, bank, photos)
  assert image.std() > 20  # Not a flat colour.


@pytest.mark.parametrize('name', [dc.HORSE, 'digit 7'])
def test_object_mask_defines_the_box(bank, name):
  rng = np.random.default_rng(3)
  intensity, mask = bank.sample(rng, name, 40)
  assert max(mask.shape) == 40 and mask.any() and not mask.all()
  assert intensity[mask].min() > 0.1 and intensity[~mask].max() <= 0.1
  with pytest.raises(ValueError, match="Unknown object class 'Cat'"):
    bank.sample(rng, 'Cat', 40)


def test_new_tasks_write_three_splits_model_garden_decodes(
    tmp_path, fake_fmnist_source):
  tasks = ['base_clothing', 'digits_on_textures']
  written = dc.build(str(tmp_path), tasks, num_train=4, num_val=2,
                     num_test=3, source_dir=fake_fmnist_source)
  with open(tmp_path / 'base_clothing' / 'label_map.json') as f:
    assert json.load(f) == {'1': 'top', '2': 'bottom', '3': 'footwear',
                            '4': 'bag'}
  with open(tmp_path / 'digits_on_textures' / 'label_map.json') as f:
    assert json.load(f) == {'1': 'digit 0', '2': 'digit 1', '3': 'digit 7',
                            '4': 'digit 8'}
  for task in tasks:
    splits = {s: _decode(p) for s, p in written[task].items()}
    assert {s: len(r) for s, r in splits.items()} == {
        'train': 4, 'val': 2, 'test': 3}
    ids = [int(r['source_id']) for rs in splits.values() for r in rs]
    assert sorted(ids) == list(range(9))  # Unique across the splits.
    for record in (r for rs in splits.values() for r in rs):
      boxes = record['groundtruth_boxes'].numpy()
      assert len(boxes) >= 1 and (boxes >= 0).all() and (boxes <= 1).all()
      assert (boxes[:, 2:] > boxes[:, :2]).all()
      assert set(record['groundtruth_classes'].numpy()) <= {1, 2, 3, 4}
    first = lambda split: splits[split][0]['image'].numpy()
    assert not np.array_equal(first('val'), first('test'))
  assert not [p for p in os.listdir(tmp_path / 'base_clothing')
              if p.endswith('.incomplete')]


@pytest.mark.parametrize('task', ORIGINAL_TASKS)
def test_train_and_val_are_those_of_the_old_streams(
    tmp_path, bank, fake_fmnist_source, task):
  # Before the test split, split k of the i-th task (sorted) was composed
  # from default_rng([seed, k, i]); it still must be.
  written = dc.build(str(tmp_path), [task], num_train=2, num_val=2,
                     num_test=2, seed=5, source_dir=fake_fmnist_source)
  spec = dc.TASKS[task]
  photos = {n: dc.rgb(dc.BACKGROUNDS[n]()) for n in spec.backgrounds}
  for offset, split in enumerate(('train', 'val')):
    rng = np.random.default_rng([5, offset, ORIGINAL_TASKS.index(task)])
    expected = [dc.compose(rng, spec, bank, photos) for _ in range(2)]
    # Two records, round-robin over two shards: read back in order.
    records = _decode(written[task][split])
    assert len(records) == 2
    for record, (image, boxes, labels) in zip(records, expected):
      np.testing.assert_array_equal(record['image'].numpy(), image)
      np.testing.assert_allclose(record['groundtruth_boxes'].numpy() * 128,
                                 boxes, atol=1e-4)
      np.testing.assert_array_equal(record['groundtruth_classes'], labels)


def test_bad_box_is_reported_with_its_record():
  image = np.zeros((10, 10, 3), np.uint8)
  with pytest.raises(ValueError, match='train record 7: box .* outside'):
    tfrecords.detection_example(image, [[0, 0, 11, 5]], [1], 7,
                                where='train record 7')


def test_unknown_task_is_named(tmp_path, bank):
  with pytest.raises(ValueError, match="Unknown task 'cars'"):
    dc.build_task(str(tmp_path), 'cars', bank, 1, 1)
