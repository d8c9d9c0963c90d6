"""How much query-AP class confusion costs a detector filtered to a class.

A query-modulated detector (arXiv 2106.10258) can beat the standard
detector filtered to the queried class q by telling q from the other
classes better: not firing on another class's object (a look-alike), and
so not ranking such a false positive above q's objects. It cannot, from the
query alone, fix what is wrong with q's own boxes (localisation, missed
objects, duplicates). This module splits a filtered detector's query-AP
along that line:

- a detection is a **confusion** when the ground-truth box it overlaps most
  (IoU >= `IOU_THRESHOLD`) is another class's object in the same image;
- `AP_confusion_free` is the query-AP of the same detections with the
  confusions removed: what the detector would score with perfect class
  discrimination and everything else unchanged. Its gain over `AP` bounds
  what a query can add by discrimination (a query pass that also found q's
  objects better, e.g. raised a missed one above the score threshold, could
  go past it; this is the part a better classifier of the same boxes gets);
- the same two at IoU 0.5 alone (`AP50`, `AP50_confusion_free`): the share
  of AP lost to loose boxes is the gap between AP50 and AP.

All over present-class queries (the runs whose image holds q), as the
study's target is stated. Boxes are [ymin, xmin, ymax, xmax] in any one
unit.
"""
from typing import Mapping, Sequence

import numpy as np

from univision.evaluation import query_ap

IOU_THRESHOLD = 0.5


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """[N, M] IoU of boxes a [N, 4] and b [M, 4] (continuous coordinates)."""
  a = np.asarray(a, np.float64).reshape(-1, 4)
  b = np.asarray(b, np.float64).reshape(-1, 4)
  low = np.maximum(a[:, None, :2], b[None, :, :2])
  high = np.minimum(a[:, None, 2:], b[None, :, 2:])
  inter = np.clip(high - low, 0, None).prod(-1)
  area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])
  union = area(a)[:, None] + area(b)[None, :] - inter
  return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def confusions(boxes: np.ndarray, gt: np.ndarray,
               others: np.ndarray) -> np.ndarray:
  """[N] bool: the detections whose best-overlapping ground truth is another
  class's box (IoU >= `IOU_THRESHOLD`, above their IoU with any `gt`)."""
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  best = lambda truth: (pairwise_iou(boxes, truth).max(1) if len(
      np.asarray(truth).reshape(-1, 4)) else np.zeros(len(boxes)))
  other = best(others)
  return (other >= IOU_THRESHOLD) & (other > best(gt))


def without_confusions(runs_by_class: Mapping[int, Sequence[tuple]],
                       others_by_class: Mapping[int, Sequence[np.ndarray]]
                       ) -> dict[int, list[tuple]]:
  """`runs_by_class` with each run's confusions removed.

  Args:
    runs_by_class: {class: [(gt boxes, detected boxes, scores), ...]} as
      `query_ap.query_ap` takes.
    others_by_class: {class: [the run image's boxes of every other class,
      ...]}, one per run, in the same order.

  Raises:
    ValueError: naming the class whose two lists differ in length.
  """
  cleaned = {}
  for cls, runs in runs_by_class.items():
    others = others_by_class[cls]
    if len(others) != len(runs):
      raise ValueError(f'Class {cls}: {len(runs)} runs but {len(others)} '
                       'other-class box lists.')
    cleaned[cls] = []
    for (gt, boxes, scores), other in zip(runs, others):
      keep = ~confusions(boxes, gt, other)
      cleaned[cls].append((gt, np.asarray(boxes).reshape(-1, 4)[keep],
                           np.asarray(scores).reshape(-1)[keep]))
  return cleaned


def breakdown(runs_by_class: Mapping[int, Sequence[tuple]],
              others_by_class: Mapping[int, Sequence[np.ndarray]]
              ) -> dict[str, float]:
  """Present-class query-AP with and without confusions, at IoU
  0.50:0.95 and 0.5 (keys `AP`, `AP_confusion_free`, `AP50`,
  `AP50_confusion_free`)."""
  clean = without_confusions(runs_by_class, others_by_class)
  result = {}
  for suffix, runs in (('', runs_by_class), ('_confusion_free', clean)):
    result[f'AP{suffix}'] = query_ap.query_ap(
        runs, present_only=True)['query_AP']
    result[f'AP50{suffix}'] = query_ap.query_ap(
        runs, [IOU_THRESHOLD], present_only=True)['query_AP']
  return result
