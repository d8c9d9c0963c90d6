"""Query ids: classes, then referring queries; rules over boxes."""
import numpy as np
import pytest
import tensorflow as tf

from univision.core import query_vocabulary as qv


def test_ids_round_trip_and_tensors_agree():
  vocab = qv.QueryVocabulary(5, ('largest', 'leftmost'))
  assert vocab.size == 5 + 2 * 4
  ids = [vocab.query_id(c, r) for r in (None, 'largest', 'leftmost')
         for c in range(1, 5)]
  assert ids == list(range(1, 13))
  assert [vocab.describe(i) for i in (3, 5, 12)] == [
      (3, None), (1, 'largest'), (4, 'leftmost')]
  classes = vocab.query_class(tf.constant(ids)).numpy().tolist()
  rules = vocab.query_rule(tf.constant(ids)).numpy().tolist()
  assert classes == [vocab.describe(i)[0] for i in ids]
  assert rules == [-1 if vocab.describe(i)[1] is None else
                   vocab.rules.index(vocab.describe(i)[1]) for i in ids]
  assert vocab.name(9, {4: 'shirt'}) == 'the leftmost 1'
  assert vocab.name(8, {4: 'shirt'}) == 'the largest shirt'
  assert vocab.class_table() == [0, 1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4]
  assert qv.QueryVocabulary(3).class_table() == [0, 1, 2]


def test_bad_ids_and_rules_are_named():
  vocab = qv.QueryVocabulary(5, ('largest',))
  with pytest.raises(ValueError, match='Query id 9'):
    vocab.describe(9)
  with pytest.raises(ValueError, match='Class 5'):
    vocab.query_id(5)
  with pytest.raises(ValueError, match="'leftmost'"):
    vocab.query_id(2, 'leftmost')
  with pytest.raises(ValueError, match='referring_rules'):
    qv.QueryVocabulary(5, ('biggest',))
  with pytest.raises(ValueError, match='referring_rules'):
    qv.QueryVocabulary(5, ('largest', 'largest'))


def test_rules_select_the_largest_and_the_leftmost_box():
  boxes = [[0, 30, 10, 40], [0, 0, 50, 20], [0, 5, 4, 12]]
  assert qv.select(boxes, 'largest') == 1
  assert qv.select(boxes, 'leftmost') == 2  # Centre 8.5 < 10 < 35.
  with pytest.raises(ValueError, match='at least one box'):
    qv.select(np.zeros([0, 4]), 'largest')


def test_selected_boxes_keep_every_copy_of_the_chosen_box():
  boxes = tf.constant([[0, 0, 10, 10], [0, 0, 10.00001, 10], [0, 0, 50, 50],
                       [0, 0, 20, 20]], tf.float32)
  candidates = tf.constant([True, True, False, True])
  largest = qv.selected_boxes(boxes, candidates, tf.constant(0),
                              ('largest', 'leftmost'))
  np.testing.assert_array_equal(largest, [False, False, False, True])
  leftmost = qv.selected_boxes(boxes, candidates, tf.constant(1),
                               ('largest', 'leftmost'))
  np.testing.assert_array_equal(leftmost, [True, True, False, False])
  every = qv.selected_boxes(boxes, candidates, tf.constant(-1),
                            ('largest', 'leftmost'))
  np.testing.assert_array_equal(every, candidates)
  none = qv.selected_boxes(boxes, tf.zeros([4], tf.bool), tf.constant(0),
                           ('largest',))
  assert not none.numpy().any()
