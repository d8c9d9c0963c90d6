"""Query-AP on hand-made cases with known answers."""
import numpy as np
import pytest

from univision.evaluation import query_ap

BOX = [0, 0, 10, 10]
FAR = [50, 50, 60, 60]


def test_perfect_detections_score_one():
  runs = [([BOX], [BOX], [0.9]), ([FAR], [FAR], [0.8])]
  assert query_ap.average_precision(runs, 0.5) == pytest.approx(1.0)
  assert query_ap.query_ap({1: runs})['query_AP'] == pytest.approx(1.0)


def test_false_positive_ranked_first_halves_precision_at_full_recall():
  # FP (score 0.9) then TP (0.8): precision 1/2 at recall 1 -> AP 0.5.
  runs = [([BOX], [FAR, BOX], [0.9, 0.8])]
  assert query_ap.average_precision(runs, 0.5) == pytest.approx(0.5)
  # TP first: precision 1 until recall 1 -> AP 1.
  runs = [([BOX], [BOX, FAR], [0.9, 0.8])]
  assert query_ap.average_precision(runs, 0.5) == pytest.approx(1.0)


def test_detection_on_an_absent_query_is_a_false_positive():
  present = ([BOX], [BOX], [0.5])
  absent_clean = (np.zeros((0, 4)), np.zeros((0, 4)), [])
  absent_fired = (np.zeros((0, 4)), [BOX], [0.9])
  assert query_ap.average_precision([present, absent_clean], 0.5) == 1.0
  assert query_ap.average_precision([present, absent_fired],
                                    0.5) == pytest.approx(0.5)


def test_half_found_scores_half_and_iou_threshold_matters():
  runs = [([BOX, FAR], [BOX], [0.9])]
  assert query_ap.average_precision(runs, 0.5) == pytest.approx(51 / 101)
  shifted = [([BOX], [[0, 3, 10, 13]], [0.9])]  # IoU 7/13 = 0.54.
  assert query_ap.average_precision(shifted, 0.5) == pytest.approx(1.0)
  assert query_ap.average_precision(shifted, 0.6) == 0.0


def test_one_detection_matches_one_box_only():
  runs = [([BOX, BOX], [BOX, BOX], [0.9, 0.8])]
  assert query_ap.average_precision(runs, 0.5) == pytest.approx(1.0)
  runs = [([BOX], [BOX, BOX], [0.9, 0.8])]  # Duplicate: FP at rank 2.
  assert query_ap.average_precision(runs, 0.5) == pytest.approx(1.0)


def test_mean_over_classes_with_ground_truth_only():
  result = query_ap.query_ap({
      1: [([BOX], [BOX], [0.9])],
      2: [([BOX], [FAR, BOX], [0.9, 0.8])],
      3: [(np.zeros((0, 4)), [BOX], [0.9])],  # No ground truth: skipped.
  }, iou_thresholds=[0.5])
  assert result == pytest.approx({'query_AP': 0.75, 'AP/1': 1.0,
                                  'AP/2': 0.5})
  with pytest.raises(ValueError, match='undefined'):
    query_ap.query_ap({3: [(np.zeros((0, 4)), [BOX], [0.9])]})
