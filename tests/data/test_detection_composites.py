"""Composite detection tasks: exact boxes, Model Garden's record format."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from official.vision.dataloaders import tf_example_decoder

from univision.data import detection_composites as dc
from univision.data import fashion_mnist
from univision.data import tfrecords


@pytest.fixture(scope='module')
def bank(fake_fmnist_source):
  images, labels = fashion_mnist.load(fake_fmnist_source)['train']
  return dc.ObjectBank(images, labels)


@pytest.mark.parametrize('task', sorted(dc.TASKS))
def test_boxes_are_the_tight_boxes_of_the_pasted_objects(bank, task):
  spec = dc.TASKS[task]
  # On a black photo every non-black pixel belongs to an object, so each box
  # must touch its object's pixels on all four sides, and no object pixel
  # may lie outside the boxes.
  black = dc.TaskSpec(spec.classes, ('black',), spec.object_size,
                      spec.max_objects, spec.image_size)
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


def test_composites_use_real_photos(bank):
  spec = dc.TASKS['tops_on_photos']
  photos = {n: dc.rgb(dc.BACKGROUNDS[n]()) for n in spec.backgrounds}
  image, _, _ = dc.compose(np.random.default_rng(1), spec, bank, photos)
  assert image.std() > 20  # Not a flat colour.


def test_object_mask_defines_the_box(bank):
  rng = np.random.default_rng(3)
  intensity, mask = bank.sample(rng, dc.HORSE, 40)
  assert max(mask.shape) == 40 and mask.any() and not mask.all()
  assert intensity[mask].min() > 0.1 and intensity[~mask].max() <= 0.1
  with pytest.raises(ValueError, match="Unknown object class 'Cat'"):
    bank.sample(rng, 'Cat', 40)


def test_records_decode_with_model_garden(tmp_path, fake_fmnist_source):
  written = dc.build(str(tmp_path), ['horses_and_bags'], num_train=6,
                     num_val=2, source_dir=fake_fmnist_source)
  paths = written['horses_and_bags']
  assert len(paths['train']) == 2 and len(paths['val']) == 2
  with open(tmp_path / 'horses_and_bags' / 'label_map.json') as f:
    assert json.load(f) == {'1': 'horse', '2': 'bag'}
  decoder = tf_example_decoder.TfExampleDecoder()
  records = list(tf.data.TFRecordDataset(paths['train']))
  assert len(records) == 6
  decoded = decoder.decode(records[0])
  boxes = decoded['groundtruth_boxes'].numpy()
  assert boxes.shape[1] == 4 and (boxes >= 0).all() and (boxes <= 1).all()
  assert set(decoded['groundtruth_classes'].numpy()) <= {1, 2}
  assert decoded['source_id'].numpy() == b'0'  # Numeric: MG parses it.
  height = int(decoded['height'])
  areas = decoded['groundtruth_area'].numpy()
  pixel = boxes * height
  np.testing.assert_allclose(
      areas, (pixel[:, 2] - pixel[:, 0]) * (pixel[:, 3] - pixel[:, 1]),
      rtol=1e-5)
  assert not [p for p in os.listdir(tmp_path / 'horses_and_bags')
              if p.endswith('.incomplete')]


def test_bad_box_is_reported_with_its_record():
  image = np.zeros((10, 10, 3), np.uint8)
  with pytest.raises(ValueError, match='train record 7: box .* outside'):
    tfrecords.detection_example(image, [[0, 0, 11, 5]], [1], 7,
                                where='train record 7')


def test_unknown_task_is_named(tmp_path, bank):
  with pytest.raises(ValueError, match="Unknown task 'cars'"):
    dc.build_task(str(tmp_path), 'cars', bank, 1, 1)
