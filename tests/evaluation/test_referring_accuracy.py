"""Referring accuracy: one answer per query, by IoU with the rule's box."""
import numpy as np
import pytest

from univision.evaluation import referring_accuracy as ra


def _case(rule, target, query_boxes, standard_boxes, standard_scores):
  return ra.Case(rule, np.array(target, float), np.array(query_boxes, float),
                 np.array(standard_boxes, float),
                 np.array(standard_scores, float))


def test_iou_and_rule_answer():
  assert ra.iou(np.array([0, 0, 10, 10]), np.array([0, 5, 10, 15])) == (
      pytest.approx(1 / 3))
  assert ra.iou(np.array([0, 0, 1, 1]), np.array([2, 2, 3, 3])) == 0.0
  boxes = np.array([[0, 0, 10, 10], [0, 20, 40, 60], [0, 40, 5, 45]], float)
  scores = np.array([0.9, 0.3, 0.6])
  np.testing.assert_array_equal(ra.rule_answer(boxes, scores, 'largest', 0.2),
                                boxes[1])
  np.testing.assert_array_equal(ra.rule_answer(boxes, scores, 'largest', 0.5),
                                boxes[0])
  # Nothing reaches the threshold: the top detection answers.
  np.testing.assert_array_equal(
      ra.rule_answer(boxes, scores, 'leftmost', 0.95), boxes[0])
  assert ra.rule_answer(np.zeros([0, 4]), np.zeros([0]), 'largest', 0.1) is (
      None)


def test_accuracies_pick_the_best_threshold_for_the_baseline():
  big, small = [0, 0, 40, 40], [50, 50, 60, 60]
  cases = [
      # The query pass answers right; the baseline needs threshold <= 0.3.
      _case('largest', big, [big, small], [small, big], [0.8, 0.3]),
      # The query pass has nothing; the baseline is right at any threshold.
      _case('largest', small, [], [small], [0.9]),
      _case('leftmost', big, [small], [big, small], [0.5, 0.6]),
  ]
  results = ra.accuracies(cases, thresholds=(0.2, 0.5, 0.7))
  assert results['query_pass'] == pytest.approx(1 / 3)
  assert results['select_by_rule'] == 1.0
  assert results['select_by_rule_threshold'] == 0.2
  assert results['query_pass/largest'] == 0.5
  assert results['select_by_rule/leftmost'] == 1.0
  assert results['cases'] == 3
  high = ra.accuracies(cases, thresholds=(0.7,))
  assert high['select_by_rule'] == pytest.approx(1 / 3)
  with pytest.raises(ValueError, match='No referring case'):
    ra.accuracies([])
