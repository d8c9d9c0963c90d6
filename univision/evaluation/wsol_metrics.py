"""Weakly supervised object localization (WSOL) metrics.

Implements the protocol of Choe et al., "Evaluating Weakly Supervised Object
Localization Methods Right" (CVPR 2020): a class activation map (CAM),
normalised to [0, 1], is binarised at every threshold of a grid; boxes are the
bounding rectangles of the mask's contours. Per threshold, an image is
localised if the best IoU between a predicted and a ground-truth box reaches
delta. MaxBoxAccV2 uses every contour's box ("multi-contour") and averages
delta in {30, 50, 70}%; MaxBoxAccV1 keeps the largest contour and delta = 50%.
Both take the best threshold over the grid. PxAP is the area under the
pixel-level precision-recall curve of maps against ground-truth masks.

Boxes are (x0, y0, x1, y1) in INCLUSIVE integer pixel coordinates: a box
covers columns x0..x1 and rows y0..y1, so its area is
(x1 - x0 + 1) * (y1 - y0 + 1). Ground-truth boxes must use the same
convention, at the resolution of the map.

Deliberate differences from the reference code (clovaai/wsolevaluation):
  * the mask is `cam >= t` on the float map, not a strict threshold on the
    map quantised to uint8;
  * a contour's box ends at x + w - 1 (its last pixel), where the reference
    uses x + w clipped to the image: one pixel wider under the +1 IoU;
  * the default grid is k / n exactly (not np.arange's accumulated steps);
  * PxAP has no "ignore" region: every pixel is positive or negative.
`BoxAccumulator(protocol='wsolevaluation')` and
`wsolevaluation_protocol.PxAPAccumulator` reproduce the reference's
choices instead, for numbers comparable with published tables.
All accuracies are in percent (0-100).
"""
from typing import Sequence

import cv2
import numpy as np

from univision.evaluation import wsolevaluation_protocol


def threshold_grid(num: int) -> np.ndarray:
  """The grid [0, 1/num, ..., (num - 1)/num], each value exactly k / num."""
  if num < 1:
    raise ValueError(f'Need at least one threshold, got num={num}.')
  return np.arange(num) / num


def _check_grid(thresholds: Sequence[float]) -> np.ndarray:
  grid = np.asarray(thresholds, np.float64)
  if grid.ndim != 1 or not grid.size or not np.isfinite(grid).all() or (
      np.diff(grid) <= 0).any():
    raise ValueError('Thresholds must be a non-empty, finite, strictly '
                     f'increasing 1-D sequence, got {thresholds!r}.')
  return grid


def _check_map(cam: np.ndarray, normalized: bool = False) -> np.ndarray:
  cam = np.asarray(cam, np.float64)
  if cam.ndim != 2 or not cam.size or not np.isfinite(cam).all():
    raise ValueError('Expected a finite, non-empty 2-D map, got shape '
                     f'{cam.shape} (non-finite values: '
                     f'{int((~np.isfinite(cam)).sum())}).')
  if normalized and (cam.min() < 0 or cam.max() > 1):
    raise ValueError('Expected a map normalised to [0, 1], got values in '
                     f'[{cam.min()}, {cam.max()}].')
  return cam


def normalize_cam(cam: np.ndarray) -> np.ndarray:
  """Min-max normalises a 2-D map to [0, 1]; a constant map becomes zeros."""
  cam = _check_map(cam)
  span = cam.max() - cam.min()
  return (cam - cam.min()) / span if span > 0 else np.zeros_like(cam)


def resize_cam(cam: np.ndarray, height: int, width: int) -> np.ndarray:
  """Bilinearly resizes a 2-D map to [height, width] (cv2.INTER_LINEAR)."""
  if height < 1 or width < 1:
    raise ValueError(f'Bad target size height={height}, width={width}.')
  return cv2.resize(_check_map(cam), (width, height),
                    interpolation=cv2.INTER_LINEAR)


def _contour_boxes(cam: np.ndarray,
                   threshold: float) -> tuple[np.ndarray, int]:
  """Every contour's box [K, 4] and the index of the largest contour."""
  mask = (cam >= threshold).astype(np.uint8)
  contours, _ = cv2.findContours(mask, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
  if not contours:
    return np.zeros((1, 4), np.int64), 0
  rects = np.array([cv2.boundingRect(c) for c in contours], np.int64)
  boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:] - 1], 1)
  return boxes, int(np.argmax([cv2.contourArea(c) for c in contours]))


def boxes_from_cam(cam: np.ndarray, threshold: float,
                   multi_contour: bool = True) -> np.ndarray:
  """Inclusive boxes [K, 4] from the contours of `cam >= threshold`.

  Args:
    cam: [H, W] map.
    threshold: binarisation threshold.
    multi_contour: every contour's box (MaxBoxAccV2) if True, else only the
      box of the contour of largest cv2.contourArea, the first on ties
      (MaxBoxAccV1). Contours are cv2.findContours(mask, cv2.RETR_TREE,
      cv2.CHAIN_APPROX_SIMPLE) of the uint8 mask `cam >= threshold`.

  Returns:
    Boxes (x0, y0, x1, y1), from cv2.boundingRect as x1 = x + w - 1,
    y1 = y + h - 1; [[0, 0, 0, 0]] when no pixel reaches the threshold.
  """
  boxes, largest = _contour_boxes(_check_map(cam), threshold)
  return boxes if multi_contour else boxes[largest:largest + 1]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """[N, M] IoU of inclusive boxes a [N, 4] and b [M, 4] ("+1" areas)."""
  a = np.asarray(a, np.int64).reshape(-1, 4)
  b = np.asarray(b, np.int64).reshape(-1, 4)
  low = np.maximum(a[:, None, :2], b[None, :, :2])
  high = np.minimum(a[:, None, 2:], b[None, :, 2:])
  inter = np.clip(high - low + 1, 0, None).prod(-1)
  area = lambda x: (x[:, 2] - x[:, 0] + 1) * (x[:, 3] - x[:, 1] + 1)
  return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def _check_gt_boxes(gt_boxes: np.ndarray) -> np.ndarray:
  boxes = np.asarray(gt_boxes)
  if boxes.ndim != 2 or boxes.shape[1] != 4 or not len(boxes):
    raise ValueError(f'gt_boxes must be [N >= 1, 4], got shape {boxes.shape}.')
  bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]) | (
      boxes != np.round(boxes)).any(1)
  if bad.any():
    raise ValueError(f'Bad ground-truth box {boxes[bad][0].tolist()}: need '
                     'integers with x0 <= x1 and y0 <= y1 (inclusive).')
  return boxes.astype(np.int64)


def _check_protocol(protocol: str) -> str:
  if protocol not in wsolevaluation_protocol.PROTOCOLS:
    raise ValueError(f'task.evaluation.protocol={protocol!r}; expected one '
                     f'of {wsolevaluation_protocol.PROTOCOLS}.')
  return protocol


def best_ious(cam: np.ndarray, gt_boxes: np.ndarray,
              thresholds: Sequence[float],
              protocol: str = 'univision') -> tuple[np.ndarray, np.ndarray]:
  """Per threshold, the best IoU over (predicted box, GT box) pairs.

  Args:
    cam: [H, W] map normalised to [0, 1], at the resolution of the boxes.
    gt_boxes: [N, 4] inclusive integer boxes (x0, y0, x1, y1).
    thresholds: [T] increasing CAM thresholds.
    protocol: 'univision' (this module's boxes) or 'wsolevaluation' (the
      reference's: `wsolevaluation_protocol.contour_boxes`).

  Returns:
    ([T] largest-contour IoUs (V1), [T] multi-contour IoUs (V2)).
  """
  cam, gt_boxes = _check_map(cam, normalized=True), _check_gt_boxes(gt_boxes)
  boxes_at = (_contour_boxes if _check_protocol(protocol) == 'univision'
              else wsolevaluation_protocol.contour_boxes)
  largest_ious, multi_ious = [], []
  for threshold in _check_grid(thresholds):
    boxes, largest = boxes_at(cam, threshold)
    ious = box_iou(boxes, gt_boxes).max(1)
    largest_ious.append(ious[largest])
    multi_ious.append(ious.max())
  return np.array(largest_ious), np.array(multi_ious)


class BoxAccumulator:
  """MaxBoxAccV1/V2, GT-known Loc and Top-1 Loc over images, in percent.

  Stores, per image, the [T] best-IoU vectors of best_ious(), so memory is
  O(images x T). At a threshold, an image is localised at delta if its best
  IoU >= delta / 100. MaxBoxAccV2/IoU<delta> is the best accuracy over the
  grid (multi-contour boxes), MaxBoxAccV2 their mean; MaxBoxAccV1 is the
  best accuracy at delta = 50 with largest-contour boxes. GT-known Loc is
  that largest-contour accuracy at one threshold, Top-1 Loc the percentage
  localised AND correctly classified there.

  Args:
    thresholds: increasing CAM threshold grid; default threshold_grid(100).
      The paper's main setting is threshold_grid(1000).
    iou_thresholds: IoU deltas in percent for MaxBoxAccV2, each in (0, 100].
    protocol: how boxes come from maps (`best_ious`).
  """

  def __init__(self, thresholds: Sequence[float] | None = None,
               iou_thresholds: Sequence[float] = (30, 50, 70),
               protocol: str = 'univision'):
    self.protocol = _check_protocol(protocol)
    self.thresholds = _check_grid(
        threshold_grid(100) if thresholds is None else thresholds)
    for delta in iou_thresholds:
      if not 0 < delta <= 100:
        raise ValueError(f'IoU threshold {delta} is not in (0, 100] percent.')
    self.iou_thresholds = tuple(iou_thresholds)
    self._largest, self._multi, self._correct = [], [], []

  def update(self, cam: np.ndarray, gt_boxes: np.ndarray,
             correct: bool | None = None) -> None:
    """Adds one image.

    Args:
      cam: [H, W] map normalised to [0, 1], at the resolution of the boxes.
      gt_boxes: [N, 4] inclusive integer boxes (x0, y0, x1, y1).
      correct: whether the classifier's top-1 class is right; None if
        unknown. Top-1 Loc needs it for every image.
    """
    largest, multi = best_ious(cam, gt_boxes, self.thresholds,
                               self.protocol)
    self._largest.append(largest)
    self._multi.append(multi)
    self._correct.append(None if correct is None else bool(correct))

  def result(self, threshold: float | None = None) -> dict[str, float]:
    """The metrics, accuracies in percent.

    Args:
      threshold: a grid value at which to report GT-known and Top-1 Loc;
        default: 'best_threshold', the first threshold attaining MaxBoxAccV1.

    Returns:
      {'MaxBoxAccV2/IoU<delta>', 'MaxBoxAccV2', 'MaxBoxAccV1',
      'best_threshold', 'GT-known Loc', 'Top-1 Loc' (only if every update
      gave `correct`), 'images'}.
    """
    if not self._largest:
      raise ValueError('BoxAccumulator is empty: call update() first.')
    correct = self._correct_flags()
    multi, hits = np.stack(self._multi), np.stack(self._largest) >= 0.5
    out = {f'MaxBoxAccV2/IoU{delta:g}': 100 * float(
        (multi >= delta / 100).mean(0).max()) for delta in self.iou_thresholds}
    out['MaxBoxAccV2'] = float(np.mean(list(out.values())))
    best = int(np.argmax(hits.mean(0)))
    out['MaxBoxAccV1'] = 100 * float(hits[:, best].mean())
    out['best_threshold'] = float(self.thresholds[best])
    hits = hits[:, best if threshold is None else self._grid_index(threshold)]
    out['GT-known Loc'] = 100 * float(hits.mean())
    if correct is not None:
      out['Top-1 Loc'] = 100 * float((hits & correct).mean())
    out['images'] = len(self._largest)
    return out

  def _correct_flags(self) -> np.ndarray | None:
    known = [c is not None for c in self._correct]
    if any(known) and not all(known):
      raise ValueError('Some updates gave `correct` and some did not: '
                       'Top-1 Loc is undefined.')
    return np.array(self._correct) if all(known) else None

  def _grid_index(self, threshold: float) -> int:
    where = np.flatnonzero(np.isclose(self.thresholds, threshold))
    if not len(where):
      raise ValueError(f'Threshold {threshold} is not in the grid.')
    return int(where[0])


class PxAPAccumulator:
  """Pixel average precision (PxAP) of maps against GT masks, in percent.

  For each threshold t_k, TP_k and FP_k count GT-positive and GT-negative
  pixels with cam >= t_k; precision_k = TP_k / (TP_k + FP_k), defined as 1
  when no pixel reaches t_k; recall_k = TP_k / (all positive pixels, also
  those below every threshold). With the thresholds taken from high to low
  (so recall never decreases) and recall 0 before the first,
  PxAP = 100 * sum_k precision_k * (recall_k - recall_{k-1}), the step-wise
  area under the precision-recall curve. Only per-threshold pixel counts
  are kept, so memory does not grow with the number of images.

  Args:
    num_bins: the grid is threshold_grid(num_bins), i.e. k / num_bins.
    thresholds: an explicit increasing grid; overrides num_bins.
  """

  def __init__(self, num_bins: int = 100,
               thresholds: Sequence[float] | None = None):
    self.thresholds = _check_grid(
        threshold_grid(num_bins) if thresholds is None else thresholds)
    self._positive = np.zeros(len(self.thresholds), np.int64)
    self._negative = np.zeros(len(self.thresholds), np.int64)
    self._num_positive = 0

  def update(self, cam: np.ndarray, mask: np.ndarray) -> None:
    """Adds a normalised map [H, W] and its GT mask [H, W] (True = object)."""
    cam, mask = _check_map(cam, normalized=True), np.asarray(mask, bool)
    if cam.shape != mask.shape:
      raise ValueError(f'cam shape {cam.shape} != mask shape {mask.shape}.')
    # Bin k holds values in [t_k, t_{k+1}); bin -1 (below t_0) is dropped.
    bins = np.searchsorted(self.thresholds, cam, side='right') - 1
    size = len(self.thresholds)
    self._num_positive += int(mask.sum())
    self._positive += np.bincount(bins[mask & (bins >= 0)], minlength=size)
    self._negative += np.bincount(bins[~mask & (bins >= 0)], minlength=size)

  def result(self) -> dict[str, float | np.ndarray]:
    """{'PxAP': percent, 'precision': [T], 'recall': [T]}, by threshold."""
    if not self._num_positive:
      raise ValueError('No positive ground-truth pixel: PxAP is undefined.')
    true_pos = self._positive[::-1].cumsum()[::-1]  # Pixels with cam >= t_k.
    predicted = true_pos + self._negative[::-1].cumsum()[::-1]
    precision = np.where(predicted > 0, true_pos / np.maximum(predicted, 1), 1.)
    recall = true_pos / self._num_positive
    gains = np.diff(recall[::-1], prepend=0.0)
    return {'PxAP': 100 * float((precision[::-1] * gains).sum()),
            'precision': precision, 'recall': recall}


class PartMassAccumulator:
  """How much of each CAM falls on a small part of the object, in percent.

  For data whose finest label is decided by a part (`data.wsol_parts`: a
  coloured marker), per image: the share of the normalised map's total
  on the part's pixels; `part_cam_mass` is its mean over images, and
  `part_area` the part's mean share of the image's pixels (what a uniform
  map would put there). A map pulled onto the part has a mass well above
  its area.
  """

  def __init__(self):
    self._mass, self._area = [], []

  def __len__(self) -> int:
    """Images added."""
    return len(self._mass)

  def update(self, cam: np.ndarray, part_mask: np.ndarray) -> None:
    """Adds a normalised map [H, W] and the part's mask [H, W]."""
    cam, part = _check_map(cam, normalized=True), np.asarray(part_mask, bool)
    if cam.shape != part.shape:
      raise ValueError(f'cam shape {cam.shape} != part mask shape '
                       f'{part.shape}.')
    total = cam.sum()
    self._mass.append(cam[part].sum() / total if total > 0 else 0.0)
    self._area.append(part.mean())

  def result(self) -> dict[str, float]:
    """{'part_cam_mass', 'part_area'} in percent."""
    if not self._mass:
      raise ValueError('PartMassAccumulator is empty: no image had a part '
                       'mask.')
    return {'part_cam_mass': 100 * float(np.mean(self._mass)),
            'part_area': 100 * float(np.mean(self._area))}
