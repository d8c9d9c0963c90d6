"""Query-AP (pycocotools' COCOeval) on hand-made cases with known answers."""
import numpy as np
import pytest

from univision.evaluation import query_ap

BOX = [0, 0, 10, 10]
FAR = [50, 50, 60, 60]
NONE = np.zeros((0, 4))


def _ap(runs, iou=0.5, **kwargs):
  return query_ap.query_ap({1: runs}, [iou], **kwargs)['AP/1']


def test_perfect_detections_score_one():
  runs = [([BOX], [BOX], [0.9]), ([FAR], [FAR], [0.8])]
  assert _ap(runs) == pytest.approx(1.0)
  assert query_ap.query_ap({1: runs})['query_AP'] == pytest.approx(1.0)


def test_false_positive_ranked_first_halves_precision_at_full_recall():
  # FP (score 0.9) then TP (0.8): precision 1/2 at recall 1 -> AP 0.5.
  assert _ap([([BOX], [FAR, BOX], [0.9, 0.8])]) == pytest.approx(0.5)
  # TP first: precision 1 until recall 1 -> AP 1.
  assert _ap([([BOX], [BOX, FAR], [0.9, 0.8])]) == pytest.approx(1.0)


def test_absent_query_detections_are_false_positives_unless_present_only():
  present = ([BOX], [BOX], [0.5])
  absent_clean = (NONE, NONE, [])
  absent_fired = (NONE, [BOX], [0.9])
  assert _ap([present, absent_clean]) == pytest.approx(1.0)
  assert _ap([present, absent_fired]) == pytest.approx(0.5)
  assert _ap([present, absent_fired], present_only=True) == pytest.approx(1.0)


def test_half_found_scores_half_and_iou_threshold_matters():
  assert _ap([([BOX, FAR], [BOX], [0.9])]) == pytest.approx(51 / 101)
  shifted = [([BOX], [[0, 3, 10, 13]], [0.9])]  # IoU 7/13 = 0.54.
  assert _ap(shifted, 0.5) == pytest.approx(1.0)
  assert _ap(shifted, 0.6) == 0.0


def test_one_detection_matches_one_box_only():
  assert _ap([([BOX, FAR], [BOX, BOX], [0.9, 0.8])]) == pytest.approx(
      51 / 101)
  # A duplicate is a false positive at rank 2, after full recall.
  assert _ap([([BOX], [BOX, BOX], [0.9, 0.8])]) == pytest.approx(1.0)


def test_mean_over_classes_with_ground_truth_only():
  result = query_ap.query_ap({
      1: [([BOX], [BOX], [0.9])],
      2: [([BOX], [FAR, BOX], [0.9, 0.8])],
      3: [(NONE, [BOX], [0.9])],  # No ground truth: skipped.
      4: [([FAR], NONE, [])],  # Nothing detected: AP 0.
  }, iou_thresholds=[0.5])
  assert result == pytest.approx({'query_AP': 0.5, 'AP/1': 1.0, 'AP/2': 0.5,
                                  'AP/4': 0.0})
  with pytest.raises(ValueError, match='undefined'):
    query_ap.query_ap({3: [(NONE, [BOX], [0.9])]})
  with pytest.raises(ValueError, match='undefined'):
    query_ap.query_ap({1: [(NONE, [BOX], [0.9])]}, present_only=True)


def test_default_thresholds_average_over_coco_ious():
  shifted = [([BOX], [[0, 1, 10, 11]], [0.9])]  # IoU 9/11 = 0.818.
  # Matched at 0.50 ... 0.80 (7 of 10 thresholds).
  assert query_ap.query_ap({1: shifted})['query_AP'] == pytest.approx(0.7)
