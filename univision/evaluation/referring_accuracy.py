"""Referring-query accuracy: one answer box per query, right at IoU >= 0.5.

A referring query ("the largest shirt", `core.query_vocabulary`) asks for
one object, so it is scored as referring-expression comprehension is: the
answer is one box, right if its IoU with the box the rule selects among the
image's ground-truth boxes of the class is at least 0.5; accuracy is the
share of right answers over (image, query) cases whose image holds the
class.

Two answers are compared (arXiv 2106.10258 compares its query-modulated
detector with referring-expression systems):

- the query-modulated pass: its top-scoring detection for the query;
- detect-then-select-by-rule: the standard detector's detections of the
  class scoring at least a threshold, the rule applied to them (the top
  detection if none reaches it). The threshold is the best of `THRESHOLDS`
  on the evaluated cases themselves: an upper bound for this baseline.
"""
import dataclasses
from typing import Sequence

import numpy as np

from univision.core import query_vocabulary

THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
IOU_THRESHOLD = 0.5


@dataclasses.dataclass(frozen=True)
class Case:
  """One (image, referring query) whose image holds the query's class."""
  rule: str
  target: np.ndarray  # [4] the ground-truth box the rule selects.
  query_boxes: np.ndarray  # [N, 4] the query pass's detections, best first.
  standard_boxes: np.ndarray  # [M, 4] the standard pass's, of the class.
  standard_scores: np.ndarray  # [M]


def iou(a: np.ndarray, b: np.ndarray) -> float:
  """IoU of two [ymin, xmin, ymax, xmax] boxes."""
  h = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
  w = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
  inter = h * w
  union = ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) -
           inter)
  return float(inter / union) if union > 0 else 0.0


def rule_answer(boxes: np.ndarray, scores: np.ndarray, rule: str,
                threshold: float) -> np.ndarray | None:
  """Detect-then-select: the rule's box among detections >= threshold.

  Falls back to the top-scoring detection if none reaches the threshold;
  None without detections.
  """
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  scores = np.asarray(scores, np.float64).reshape(-1)
  if not len(boxes):
    return None
  kept = boxes[scores >= threshold]
  if not len(kept):
    return boxes[int(np.argmax(scores))]
  return kept[query_vocabulary.select(kept, rule)]


def _right(target: np.ndarray, answer: np.ndarray | None) -> bool:
  return answer is not None and iou(target, answer) >= IOU_THRESHOLD


def accuracies(cases: Sequence[Case],
               thresholds: Sequence[float] = THRESHOLDS) -> dict[str, float]:
  """Accuracy of the query pass and of detect-then-select-by-rule.

  Returns:
    `query_pass` and `select_by_rule` (at its best threshold,
    `select_by_rule_threshold`) over every case, and the same per rule
    (`query_pass/<rule>`, `select_by_rule/<rule>`, at the overall best
    threshold); `cases`, their number.

  Raises:
    ValueError: without cases.
  """
  if not cases:
    raise ValueError('No referring case: no evaluated image holds a queried '
                     'class.')
  by_threshold = {
      t: [_right(c.target, rule_answer(c.standard_boxes, c.standard_scores,
                                       c.rule, t)) for c in cases]
      for t in thresholds}
  best = max(thresholds, key=lambda t: (np.mean(by_threshold[t]), -t))
  query = [_right(c.target, c.query_boxes[0] if len(c.query_boxes) else None)
           for c in cases]
  results = {'query_pass': float(np.mean(query)),
             'select_by_rule': float(np.mean(by_threshold[best])),
             'select_by_rule_threshold': best, 'cases': len(cases)}
  for rule in sorted({c.rule for c in cases}):
    keep = [c.rule == rule for c in cases]
    results[f'query_pass/{rule}'] = float(np.mean(np.array(query)[keep]))
    results[f'select_by_rule/{rule}'] = float(
        np.mean(np.array(by_threshold[best])[keep]))
  return results
