"""Query-AP: detection AP of the queried class, averaged over query classes.

For query-modulated detection (arXiv 2106.10258) every evaluation image is
run once per query class (present or absent). For class c, all (image,
query=c) runs are pooled: the ground truth is the image's boxes of class c
(none if absent), the detections are what the query pass returned. AP is
COCO's: detections greedily matched by descending score at each IoU
threshold (0.50:0.05:0.95), precision interpolated at 101 recall points.
Query-AP is the mean over query classes that have at least one ground-truth
box. The same function scores a standard detector "filtered to the queried
class": pass its class-c detections as the query-c detections.

Boxes are [ymin, xmin, ymax, xmax] in any one unit.
"""
from typing import Mapping, Sequence

import numpy as np

IOU_THRESHOLDS = tuple(np.round(np.arange(0.5, 0.951, 0.05), 2))


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """[N, M] IoU of boxes a [N, 4] and b [M, 4]."""
  a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(
      b, np.float64).reshape(-1, 4)
  top = np.maximum(a[:, None, 0], b[None, :, 0])
  left = np.maximum(a[:, None, 1], b[None, :, 1])
  bottom = np.minimum(a[:, None, 2], b[None, :, 2])
  right = np.minimum(a[:, None, 3], b[None, :, 3])
  inter = np.clip(bottom - top, 0, None) * np.clip(right - left, 0, None)
  area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])
  union = area(a)[:, None] + area(b)[None, :] - inter
  return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def average_precision(runs: Sequence[tuple[np.ndarray, np.ndarray,
                                           np.ndarray]],
                      iou_threshold: float) -> float | None:
  """COCO-style AP over runs of (gt boxes, detected boxes, scores).

  Returns None when no run has a ground-truth box (AP undefined).
  """
  num_gt = sum(len(np.asarray(gt).reshape(-1, 4)) for gt, _, _ in runs)
  if num_gt == 0:
    return None
  hits = []  # (score, is true positive)
  for gt, boxes, scores in runs:
    gt = np.asarray(gt).reshape(-1, 4)
    boxes = np.asarray(boxes).reshape(-1, 4)
    scores = np.asarray(scores).reshape(-1)
    order = np.argsort(-scores, kind='stable')
    overlaps = iou(boxes[order], gt)
    taken = np.zeros(len(gt), bool)
    for row, index in enumerate(order):
      candidates = np.where(~taken & (overlaps[row] >= iou_threshold))[0] if (
          len(gt)) else np.array([], int)
      if len(candidates):
        taken[candidates[np.argmax(overlaps[row, candidates])]] = True
      hits.append((scores[index], bool(len(candidates))))
  if not hits:
    return 0.0
  hits.sort(key=lambda h: -h[0])
  true_positives = np.cumsum([h[1] for h in hits])
  precision = true_positives / np.arange(1, len(hits) + 1)
  recall = true_positives / num_gt
  # Precision envelope, sampled at 101 recall points (COCO).
  envelope = np.maximum.accumulate(precision[::-1])[::-1]
  points = np.linspace(0, 1, 101)
  where = np.searchsorted(recall, points, side='left')
  sampled = np.where(where < len(envelope),
                     envelope[np.minimum(where, len(envelope) - 1)], 0.0)
  return float(sampled.mean())


def query_ap(runs_by_class: Mapping[int, Sequence[tuple]],
             iou_thresholds: Sequence[float] = IOU_THRESHOLDS
             ) -> dict[str, float]:
  """Query-AP and per-class APs.

  Args:
    runs_by_class: {query class: [(gt boxes of that class, detected boxes,
      scores), ...]}, one run per evaluated (image, query).
    iou_thresholds: IoU thresholds averaged over.

  Returns:
    {'query_AP': mean over classes with ground truth, 'AP/<class>': ...}.
  """
  per_class = {}
  for cls, runs in runs_by_class.items():
    values = [average_precision(runs, t) for t in iou_thresholds]
    if values[0] is not None:
      per_class[f'AP/{cls}'] = float(np.mean(values))
  if not per_class:
    raise ValueError('No query class has a ground-truth box: query-AP is '
                     'undefined.')
  return {'query_AP': float(np.mean(list(per_class.values()))), **per_class}
