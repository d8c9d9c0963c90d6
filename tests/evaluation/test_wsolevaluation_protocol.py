"""The reference evaluator's choices, on hand-computed cases where they differ
from `wsol_metrics`' own conventions."""
import numpy as np
import pytest

from univision.evaluation import wsol_metrics
from univision.evaluation import wsolevaluation_protocol as reference


def _map():
  # Rows 1-2, columns 1-2 of a 4x5 map: 0.5 above, 1.0 below.
  cam = np.zeros((4, 5))
  cam[1, 1:3], cam[2, 1:3] = 0.5, 1.0
  return cam


def test_boxes_quantise_threshold_strictly_and_end_one_past():
  cam = _map()
  ours, _ = wsol_metrics._contour_boxes(cam, 0.5)  # pylint: disable=protected-access
  np.testing.assert_array_equal(ours, [[1, 1, 2, 2]])  # cam >= 0.5.
  # uint8: 0.5 -> 127, 1.0 -> 255; 255 > int(0.5 * 255) = 127 only: row 2.
  # Its box ends at x + w = 3, y + h = 3.
  boxes, largest = reference.contour_boxes(cam, 0.5)
  np.testing.assert_array_equal(boxes, [[1, 2, 3, 3]])
  assert largest == 0
  # At the image's edge x + w is clipped to the last column.
  edge = np.zeros((3, 4))
  edge[:, 2:] = 1.0
  np.testing.assert_array_equal(reference.contour_boxes(edge, 0.5)[0],
                                [[2, 0, 3, 2]])
  # Nothing above the threshold: the box [0, 0, 0, 0].
  np.testing.assert_array_equal(
      reference.contour_boxes(np.zeros((3, 4)), 0.0)[0], [[0, 0, 0, 0]])


def test_box_accuracy_differs_by_protocol_as_computed_by_hand():
  gt = np.array([[1, 1, 2, 2]])
  # IoU of [1, 2, 3, 3] with [1, 1, 2, 2] (+1 areas): 2 / (6 + 4 - 2).
  largest, multi = wsol_metrics.best_ious(_map(), gt, [0.5],
                                          protocol='wsolevaluation')
  assert largest[0] == multi[0] == pytest.approx(0.25)
  assert wsol_metrics.best_ious(_map(), gt, [0.5])[0][0] == 1.0
  for protocol, expected in (('univision', 100.0), ('wsolevaluation', 0.0)):
    boxes = wsol_metrics.BoxAccumulator([0.5], (50,), protocol=protocol)
    boxes.update(_map(), gt, correct=True)
    result = boxes.result()
    assert result['MaxBoxAccV1'] == result['GT-known Loc'] == expected
    assert result['Top-1 Loc'] == expected
  with pytest.raises(ValueError, match='task.evaluation.protocol'):
    wsol_metrics.BoxAccumulator([0.5], protocol='reference')


def test_pxap_gives_pixels_at_one_their_own_point():
  cam = np.array([[1.0, 0.6, 0.4, 0.0]])
  mask = np.array([[True, False, True, False]])
  ours = wsol_metrics.PxAPAccumulator(thresholds=[0.0, 0.5])
  ours.update(cam, mask)
  # >= 0.5: precision 1/2 at recall 1/2; >= 0: 2/4 at recall 1.
  assert ours.result()['PxAP'] == pytest.approx(50.0)
  theirs = reference.PxAPAccumulator(np.array([0.0, 0.5]))
  theirs.update(cam, mask)
  # >= 1: 1/1 at recall 1/2; >= 0.5: 1/2, no recall gain; >= 0: 2/4 at 1.
  assert theirs.result()['PxAP'] == pytest.approx(75.0)
  ignored = reference.PxAPAccumulator(np.array([0.0, 0.5]))
  ignored.update(cam, mask, ignore=np.array([[False, True, False, False]]))
  # The ignored 0.6 pixel is no false positive: >= 0 is 2/3 at recall 1.
  assert ignored.result()['PxAP'] == pytest.approx(50.0 + 100 / 3)
  with pytest.raises(ValueError, match='intersect'):
    ignored.update(cam, mask, ignore=mask)
  with pytest.raises(ValueError, match='No positive'):
    reference.PxAPAccumulator(np.array([0.0])).result()


def test_grid_normalisation_and_resize():
  assert len(reference.reference_grid()) == 1000
  np.testing.assert_array_equal(reference.reference_grid(0.25),
                                [0.0, 0.25, 0.5, 0.75])
  with pytest.raises(ValueError, match='interval'):
    reference.reference_grid(0.0)
  assert not reference.normalize_scoremap(np.full((2, 2), 3.0)).any()
  assert not reference.normalize_scoremap(np.array([[np.nan, 1.0]])).any()
  resized = reference.resize_and_normalize(np.array([[0.0, 1.0], [2.0, 3.0]]),
                                           8, 6)
  assert resized.shape == (8, 6)
  assert resized.min() == 0.0 and resized.max() == 1.0
  with pytest.raises(ValueError, match='2-D CAM'):
    reference.resize_and_normalize(np.zeros([2, 2, 2]), 4, 4)
