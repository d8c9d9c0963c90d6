"""The confusion breakdown of query-AP on hand-made cases."""
import numpy as np
import pytest

from univision.evaluation import query_headroom

BOX = [0, 0, 10, 10]
LOOKALIKE = [0, 20, 10, 30]  # Another class's object in the same image.
FAR = [50, 50, 60, 60]  # Nobody's box.
NONE = np.zeros((0, 4))


def test_pairwise_iou():
  iou = query_headroom.pairwise_iou([BOX, [0, 5, 10, 15]],
                                    [BOX, LOOKALIKE, [0, 0, 0, 0]])
  np.testing.assert_allclose(iou, [[1, 0, 0], [1 / 3, 0, 0]])


def test_a_detection_is_a_confusion_only_on_another_class_box():
  boxes = [LOOKALIKE, BOX, FAR, [0, 18, 10, 28]]  # The last: IoU 8/12.
  np.testing.assert_array_equal(
      query_headroom.confusions(boxes, [BOX], [LOOKALIKE]),
      [True, False, False, True])
  # Overlapping q's box more than the other's: not a confusion.
  between = [[0, 4, 10, 16]]  # IoU 11/12 with q's box, 10/12 the other's.
  assert not query_headroom.confusions(between, [[0, 4, 10, 15]],
                                       [[0, 6, 10, 16]])[0]
  assert query_headroom.confusions(between, [[0, 5, 10, 15]],
                                   [[0, 4, 10, 15]])[0]
  assert not query_headroom.confusions([LOOKALIKE], [BOX], NONE).any()
  assert not query_headroom.confusions(NONE, [BOX], [LOOKALIKE]).any()


def test_breakdown_removes_confusions_only():
  # Ranked: look-alike (FP), q's box, q's far box: precision 2/3 at full
  # recall, AP 2/3; without the confusion AP is 1. A detection on nobody's
  # box would not be a confusion.
  runs = {1: [([BOX], [LOOKALIKE, BOX], [0.9, 0.8]),
              ([FAR], [FAR], [0.7]),
              (NONE, [BOX], [0.95])]}  # Absent q: not scored (present only).
  others = {1: [np.array([LOOKALIKE]), NONE, np.array([BOX])]}
  result = query_headroom.breakdown(runs, others)
  assert result['AP50'] == pytest.approx(2 / 3)
  assert result['AP50_confusion_free'] == pytest.approx(1.0)
  assert result['AP_confusion_free'] == pytest.approx(1.0)
  assert result['AP'] == pytest.approx(result['AP50'])
  cleaned = query_headroom.without_confusions(runs, others)[1]
  assert [len(boxes) for _, boxes, _ in cleaned] == [1, 1, 0]


def test_mismatched_lists_name_the_class():
  with pytest.raises(ValueError, match='Class 3: 1 runs but 0'):
    query_headroom.without_confusions({3: [([BOX], [BOX], [0.9])]}, {3: []})
