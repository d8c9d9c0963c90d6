"""WSOL records: round trip, optional masks, errors naming the record."""
import numpy as np
import pytest
import tensorflow as tf
from official.vision.data import image_utils

from univision.data import wsol_records


def _png(height, width):
  image = np.arange(height * width * 3, dtype=np.uint8).reshape(height,
                                                                width, 3)
  return image, image_utils.encode_image(image, 'PNG')


def test_round_trip_with_and_without_mask(tmp_path):
  image, png = _png(10, 20)
  mask = np.zeros((10, 20), bool)
  mask[2:5, 4:9] = True
  examples = [
      wsol_records.wsol_example(png, 10, 20, 3, [[2, 4, 5, 9]], 'a', 'a',
                                mask),
      wsol_records.wsol_example(png, 10, 20, 1, np.zeros([0, 4]), 'b', 'b')]
  paths = wsol_records.write_wsol_tfrecords(examples, str(tmp_path / 'x'), 1)
  first, second = list(tf.data.TFRecordDataset(paths).map(
      wsol_records.decode))
  np.testing.assert_array_equal(first['image'].numpy(), image)
  assert int(first['label']) == 3 and first['source_id'] == b'a'
  np.testing.assert_allclose(first['boxes'].numpy(),
                             [[0.2, 0.2, 0.5, 0.45]], rtol=1e-6)
  np.testing.assert_array_equal(first['mask'][..., 0].numpy(), mask)
  assert bool(first['has_mask']) and not bool(second['has_mask'])
  assert second['boxes'].shape == (0, 4)
  assert not second['mask'].numpy().any()


@pytest.mark.parametrize('boxes,mask,label,message', [
    ([[0, 0, 11, 5]], None, 0, r'rec 7: box \[0.0, 0.0, 11.0, 5.0\].*10x20'),
    ([[3, 3, 3, 5]], None, 0, 'rec 7: box .* empty'),
    ([[0, 0, 5, 5]], np.zeros((5, 5), bool), 0, r'rec 7: mask shape \(5, 5\)'),
    ([[0, 0, 5, 5]], None, -1, 'rec 7: negative class label -1'),
])
def test_bad_records_are_named(boxes, mask, label, message):
  _, png = _png(10, 20)
  with pytest.raises(ValueError, match=message):
    wsol_records.wsol_example(png, 10, 20, label, boxes, 'x', 'rec 7', mask)


def test_corrupt_image_names_the_record(tmp_path):
  _, png = _png(10, 20)
  example = wsol_records.wsol_example(png[:40], 10, 20, 0, [[0, 0, 5, 5]],
                                      'img-42', 'x')
  paths = wsol_records.write_wsol_tfrecords([example], str(tmp_path / 'x'), 1)
  dataset = tf.data.TFRecordDataset(paths).map(
      lambda s: wsol_records.decode(s, where='task.validation_data'))
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='task.validation_data: record img-42'):
    next(iter(dataset))
