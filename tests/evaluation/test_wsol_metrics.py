"""WSOL metrics (Choe et al., CVPR 2020) on hand-made maps, known answers."""
import numpy as np
import pytest

from univision.evaluation import wsol_metrics


def two_blobs() -> np.ndarray:
  """10x10: a 4x4 blob of 1.0 (x, y in 1..4), a 2x2 blob of 0.5 (6..7)."""
  cam = np.zeros((10, 10))
  cam[1:5, 1:5] = 1.0
  cam[6:8, 6:8] = 0.5
  return cam


def nested_rings() -> np.ndarray:
  """10x10: 0.9 on 4..5, 0.5 on 3..6, 0.2 on 2..7 (x and y), else 0."""
  cam = np.zeros((10, 10))
  cam[2:8, 2:8] = 0.2
  cam[3:7, 3:7] = 0.5
  cam[4:6, 4:6] = 0.9
  return cam


def test_iou_counts_inclusive_pixels():
  # [0,0,1,1] and [1,1,2,2] cover 2x2 = 4 pixels each and share pixel (1,1):
  # IoU = 1 / (4 + 4 - 1) = 1/7 (without the +1 it would be 0 / 2).
  assert wsol_metrics.box_iou([[0, 0, 1, 1]],
                              [[1, 1, 2, 2]])[0, 0] == pytest.approx(1 / 7)
  # Adjacent columns 0..1 and 2..3 share no pixel; a 1-pixel box is itself.
  assert wsol_metrics.box_iou([[0, 0, 1, 1]], [[2, 0, 3, 1]])[0, 0] == 0
  assert wsol_metrics.box_iou([[3, 3, 3, 3]], [[3, 3, 3, 3]])[0, 0] == 1
  # [0,0,3,1] (8 px) vs [2,0,5,1] (8 px): overlap x 2..3, y 0..1 = 4 px.
  assert wsol_metrics.box_iou([[0, 0, 3, 1]],
                              [[2, 0, 5, 1]])[0, 0] == pytest.approx(4 / 12)


def test_boxes_are_inclusive_and_largest_contour_keeps_the_big_blob():
  cam = two_blobs()
  multi = wsol_metrics.boxes_from_cam(cam, 0.25)
  assert sorted(multi.tolist()) == [[1, 1, 4, 4], [6, 6, 7, 7]]
  assert wsol_metrics.boxes_from_cam(
      cam, 0.25, multi_contour=False).tolist() == [[1, 1, 4, 4]]
  assert wsol_metrics.boxes_from_cam(cam, 0.75).tolist() == [[1, 1, 4, 4]]
  assert wsol_metrics.boxes_from_cam(cam, 0.0).tolist() == [[0, 0, 9, 9]]


def test_constant_map_gives_the_empty_box():
  cam = wsol_metrics.normalize_cam(np.full((5, 7), 3.0))
  assert not cam.any()
  for multi_contour in (True, False):
    assert wsol_metrics.boxes_from_cam(
        cam, 0.5, multi_contour).tolist() == [[0, 0, 0, 0]]


def test_multi_contour_finds_the_small_blob_largest_contour_does_not():
  # Per threshold (0, .25, .75), best IoU of each image:
  #   GT on small blob [6,6,7,7]: V2 (4/100, 1, 0), V1 (.04, 0, 0).
  #   GT on big blob [1,1,4,4]:   V2 = V1 = (16/100, 1, 1).
  #   GT [1,1,4,7] (4x7=28 px) holds the big blob: V2 = V1 = (28/100,
  #     16/28 = .57, .57) -> passes IoU 30 and 50, fails 70.
  acc = wsol_metrics.BoxAccumulator(thresholds=(0, 0.25, 0.75))
  for gt in ([6, 6, 7, 7], [1, 1, 4, 4], [1, 1, 4, 7]):
    acc.update(two_blobs(), np.array([gt]))
  result = acc.result()
  # IoU30 and IoU50: all 3 at t=.25. IoU70: 2 of 3 at t=.25.
  assert result['MaxBoxAccV2/IoU30'] == pytest.approx(100)
  assert result['MaxBoxAccV2/IoU50'] == pytest.approx(100)
  assert result['MaxBoxAccV2/IoU70'] == pytest.approx(200 / 3)
  assert result['MaxBoxAccV2'] == pytest.approx((100 + 100 + 200 / 3) / 3)
  # V1 at IoU 50: (0, 2/3, 2/3); ties go to the first threshold, .25.
  assert result['MaxBoxAccV1'] == pytest.approx(200 / 3)
  assert result['best_threshold'] == 0.25
  assert result['GT-known Loc'] == pytest.approx(200 / 3)
  assert result['images'] == 3
  assert 'Top-1 Loc' not in result


def test_best_threshold_is_interior_and_fixed_threshold_can_miss():
  # GT = the 0.5 ring [3,3,6,6] (16 px). Default grid k/100: t = 0 gives the
  # whole map (16/100), t in (0, .2] the 6x6 box (16/36), t in (.2, .5]
  # the 4x4 box (IoU 1), t in (.5, .9] the 2x2 box (4/16).
  acc = wsol_metrics.BoxAccumulator()
  acc.update(nested_rings(), np.array([[3, 3, 6, 6]]))
  result = acc.result()
  assert result['best_threshold'] == pytest.approx(0.21)
  assert result['MaxBoxAccV1'] == result['GT-known Loc'] == 100
  assert acc.result(threshold=0.2)['GT-known Loc'] == 0
  assert acc.result(threshold=0.5)['GT-known Loc'] == 100
  assert acc.result(threshold=0.6)['GT-known Loc'] == 0
  with pytest.raises(ValueError, match='0.205'):
    acc.result(threshold=0.205)


def test_best_ious_per_threshold():
  largest, multi = wsol_metrics.best_ious(
      nested_rings(), [[3, 3, 6, 6]], thresholds=(0.0, 0.1, 0.3, 0.6, 0.95))
  expected = [16 / 100, 16 / 36, 1.0, 4 / 16, 0.0]
  np.testing.assert_allclose(largest, expected)
  np.testing.assert_allclose(multi, expected)


def test_iou_exactly_at_the_threshold_counts():
  # At t = .3 the box is [3,3,6,6] (16 px) inside GT [3,3,6,10] (4x8 = 32 px):
  # IoU = 16/32 = .5 exactly, which reaches delta = 50%.
  acc = wsol_metrics.BoxAccumulator(thresholds=(0.3,), iou_thresholds=(50,))
  acc.update(nested_rings(), [[3, 3, 6, 10]])
  result = acc.result()
  assert result['MaxBoxAccV2/IoU50'] == result['MaxBoxAccV1'] == 100
  assert result['MaxBoxAccV2'] == 100


def test_top1_loc_needs_correct_for_every_image():
  acc = wsol_metrics.BoxAccumulator(thresholds=(0.3,))
  acc.update(nested_rings(), [[3, 3, 6, 6]], correct=True)  # Localised.
  acc.update(nested_rings(), [[3, 3, 6, 6]], correct=False)  # Localised.
  acc.update(nested_rings(), [[0, 0, 1, 1]], correct=True)  # Missed.
  result = acc.result()
  assert result['GT-known Loc'] == pytest.approx(200 / 3)
  assert result['Top-1 Loc'] == pytest.approx(100 / 3)
  acc.update(nested_rings(), [[3, 3, 6, 6]])
  with pytest.raises(ValueError, match='correct'):
    acc.result()


def test_box_accumulator_rejects_bad_input():
  with pytest.raises(ValueError, match='empty'):
    wsol_metrics.BoxAccumulator().result()
  for delta in (0, 101, -5):
    with pytest.raises(ValueError, match=f'IoU threshold {delta} '):
      wsol_metrics.BoxAccumulator(iou_thresholds=(30, delta))
  with pytest.raises(ValueError, match='increasing'):
    wsol_metrics.BoxAccumulator(thresholds=(0.5, 0.2))
  acc = wsol_metrics.BoxAccumulator()
  with pytest.raises(ValueError, match=r'\[4, 0, 2, 3\]'):
    acc.update(nested_rings(), [[4, 0, 2, 3]])
  with pytest.raises(ValueError, match=r'\(3,\)'):
    acc.update(nested_rings(), [1, 2, 3])
  with pytest.raises(ValueError, match=r'\[0.0, 1.8\]'):
    acc.update(2 * nested_rings(), [[3, 3, 6, 6]])


def test_pxap_perfect_map_is_100():
  mask = np.array([[True, True], [False, False]])
  acc = wsol_metrics.PxAPAccumulator(num_bins=4)
  acc.update(mask.astype(float), mask)
  result = acc.result()
  assert result['PxAP'] == pytest.approx(100)
  # t = 0 predicts all 4 pixels: precision 2/4, recall 1.
  np.testing.assert_allclose(result['precision'], [0.5, 1, 1, 1])
  np.testing.assert_allclose(result['recall'], [1, 1, 1, 1])


def test_pxap_false_positive_ranked_first():
  # Positives score .5 and .5, the negative (1,0) scores 1.0, (1,1) 0.
  # Thresholds (0, .25, .5, .75), high to low:
  #   .75: TP 0 FP 1 -> P 0,   R 0   (gain 0)
  #   .5 : TP 2 FP 1 -> P 2/3, R 1   (gain 1)
  #   .25: same; 0: TP 2 FP 2 -> P 1/2, R 1 (gains 0)
  # PxAP = 100 * 2/3.
  mask = np.array([[True, True], [False, False]])
  acc = wsol_metrics.PxAPAccumulator(num_bins=4)
  acc.update(np.array([[0.5, 0.5], [1.0, 0.0]]), mask)
  result = acc.result()
  assert result['PxAP'] == pytest.approx(200 / 3)
  np.testing.assert_allclose(result['precision'], [0.5, 2 / 3, 2 / 3, 0])
  np.testing.assert_allclose(result['recall'], [1, 1, 1, 0])


def test_pxap_accumulates_over_images_with_partial_recall():
  # Image 1: positive at .9, negative at .6. Image 2: positive at .3, rest 0.
  # Thresholds (.2, .8, .95): .95 predicts nothing -> P 1 (by definition),
  # R 0; .8: TP 1 FP 0 -> P 1, R 1/2; .2: TP 2 FP 1 -> P 2/3, R 1.
  # PxAP = 100 * (1 * 1/2 + 2/3 * 1/2) = 250/3. Pixels scoring 0 are below
  # every threshold but the positives still count in recall.
  acc = wsol_metrics.PxAPAccumulator(thresholds=(0.2, 0.8, 0.95))
  acc.update(np.array([[0.9, 0.6], [0.0, 0.0]]),
             np.array([[True, False], [False, False]]))
  acc.update(np.array([[0.3, 0.0]]), np.array([[True, False]]))
  result = acc.result()
  assert result['PxAP'] == pytest.approx(250 / 3)
  np.testing.assert_allclose(result['precision'], [2 / 3, 1, 1])
  np.testing.assert_allclose(result['recall'], [1, 0.5, 0])
  acc.update(np.array([[0.0, 0.0]]), np.array([[True, True]]))  # Missed.
  np.testing.assert_allclose(acc.result()['recall'], [0.5, 0.25, 0])


def test_pxap_rejects_bad_input():
  acc = wsol_metrics.PxAPAccumulator()
  with pytest.raises(ValueError, match=r'\(2, 2\).*\(2, 3\)'):
    acc.update(np.zeros((2, 2)), np.zeros((2, 3), bool))
  acc.update(np.ones((2, 2)), np.zeros((2, 2), bool))
  with pytest.raises(ValueError, match='No positive'):
    acc.result()
  with pytest.raises(ValueError, match='num=0'):
    wsol_metrics.PxAPAccumulator(num_bins=0)


def test_normalize_and_resize():
  np.testing.assert_allclose(
      wsol_metrics.normalize_cam(np.array([[2, 4], [6, 10]])),
      [[0, 0.25], [0.5, 1]])
  # Bilinear with pixel centres: source x = (x + .5) / 2 - .5 = -.25, .25,
  # .75, 1.25, clamped to [0, 1] -> 0, .25, .75, 1. Output is [H=2, W=4].
  np.testing.assert_allclose(
      wsol_metrics.resize_cam(np.array([[0.0, 1.0], [0.0, 1.0]]), 2, 4),
      [[0, 0.25, 0.75, 1], [0, 0.25, 0.75, 1]])
  with pytest.raises(ValueError, match=r'\(2, 2, 3\)'):
    wsol_metrics.normalize_cam(np.zeros((2, 2, 3)))
  with pytest.raises(ValueError, match='non-finite values: 1'):
    wsol_metrics.normalize_cam(np.array([[0.0, np.nan]]))
  with pytest.raises(ValueError, match='height=0'):
    wsol_metrics.resize_cam(np.zeros((2, 2)), 0, 4)


def test_part_mass_is_the_share_of_the_map_on_the_part():
  part = np.zeros((4, 4), bool)
  part[0, 0] = True
  parts = wsol_metrics.PartMassAccumulator()
  cam = np.zeros((4, 4))
  cam[0, 0], cam[3, 3] = 1.0, 0.5  # 1 of 1.5 on the part.
  parts.update(cam, part)
  parts.update(np.ones((4, 4)), part)  # Uniform: 1 of 16.
  parts.update(np.zeros((4, 4)), part)  # An empty map puts nothing there.
  result = parts.result()
  assert len(parts) == 3
  assert result['part_cam_mass'] == pytest.approx(100 * (2 / 3 + 1 / 16) / 3)
  assert result['part_area'] == pytest.approx(100 / 16)
  with pytest.raises(ValueError, match='part mask shape'):
    parts.update(cam, part[:2])
  with pytest.raises(ValueError, match='empty'):
    wsol_metrics.PartMassAccumulator().result()
