"""Label hierarchy: mapping to levels, JSON round trip, errors that name keys."""
import json

import numpy as np
import pytest
import tensorflow as tf

from univision.data import label_hierarchy as lh

H = lh.LabelHierarchy(levels=('fine', 'coarse'),
                      names={'fine': ('a', 'b', 'c'), 'coarse': ('x', 'y')},
                      parents={'coarse': (1, 0, 1)})


def test_maps_numpy_and_tensors_to_each_level():
  np.testing.assert_array_equal(H.to_level([0, 1, 2, 2], 'coarse'),
                                [1, 0, 1, 1])
  np.testing.assert_array_equal(H.to_level([2, 0], 'fine'), [2, 0])
  mapped = H.to_level(tf.constant([2, 1], tf.int32), 'coarse')
  assert mapped.dtype == tf.int32
  np.testing.assert_array_equal(mapped.numpy(), [1, 0])
  assert H.num_classes('coarse') == 2 and H.finest == 'fine'
  with pytest.raises(ValueError, match=r"'genus'.*\['fine', 'coarse'\]"):
    H.table('genus')


def test_json_round_trip(tmp_path):
  path = str(tmp_path / 'hierarchy.json')
  lh.save(H, path)
  assert lh.load(path) == H


@pytest.mark.parametrize('data,message', [
    ({'names': {}}, "missing key 'levels'"),
    ({'levels': ['fine', 'coarse'], 'names': {'fine': ['a']}},
     "\"names\" has no level 'coarse'"),
    ({'levels': ['fine', 'coarse'], 'names': {'fine': ['a', 'b'],
                                              'coarse': ['x']},
      'parents': {'coarse': [0]}},
     r"parents\['coarse'\] has 1 entries; the finest level 'fine' has 2"),
    ({'levels': ['fine', 'coarse'], 'names': {'fine': ['a'],
                                              'coarse': ['x']},
      'parents': {'coarse': [3]}},
     r"parents\['coarse'\]\[0\] = 3 is not a label of 'coarse' \(0..0\)"),
])
def test_bad_files_are_named_with_the_key(tmp_path, data, message):
  path = tmp_path / 'h.json'
  path.write_text(json.dumps(data))
  with pytest.raises(ValueError, match=rf'h.json: .*{message}'):
    lh.load(str(path))


def test_missing_and_non_json_files(tmp_path):
  with pytest.raises(FileNotFoundError, match='nope.json'):
    lh.load(str(tmp_path / 'nope.json'))
  (tmp_path / 'bad.json').write_text('{levels')
  with pytest.raises(ValueError, match='bad.json: not JSON'):
    lh.load(str(tmp_path / 'bad.json'))
