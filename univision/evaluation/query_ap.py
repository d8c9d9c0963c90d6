"""Query-AP: COCO AP of the queried class, averaged over query classes.

For query-modulated detection (arXiv 2106.10258) every evaluation image is
run once per query class. For class c, all (image, query=c) runs are pooled:
the ground truth is the image's boxes of class c (none if c is absent), the
detections are what the run returned for the query. Each run is one image
of a COCO ground truth (its boxes under category c) and pycocotools'
`COCOeval` scores the pooled runs: AP over IoU 0.50:0.05:0.95, precision
at 101 recall points, up to 100 detections per run, every box size.
Query-AP is the mean over query classes that have a ground-truth box.

`present_only=True` keeps the runs whose image holds the queried class (the
user knows the object is there); otherwise absent-class runs count too, and
whatever they detect is a false positive. The same function scores a
standard detector "filtered to the queried class": pass its class-c
detections as the query-c detections.

Boxes are [ymin, xmin, ymax, xmax] in any one unit.
"""
import contextlib
import io
from typing import Mapping, Sequence

import numpy as np
from pycocotools import coco
from pycocotools import cocoeval

IOU_THRESHOLDS = tuple(np.round(np.arange(0.5, 0.951, 0.05), 2))
MAX_DETECTIONS = 100


def _coco_boxes(boxes) -> list[list[float]]:
  """[N, 4] ymin, xmin, ymax, xmax -> COCO [x, y, width, height]."""
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  return [[x0, y0, x1 - x0, y1 - y0] for y0, x0, y1, x1 in boxes.tolist()]


def _coco(images: list[dict], categories: list[dict],
          annotations: list[dict]) -> coco.COCO:
  data = coco.COCO()
  data.dataset = {'images': images, 'categories': categories,
                  'annotations': annotations}
  with contextlib.redirect_stdout(io.StringIO()):
    data.createIndex()
  return data


def query_ap(runs_by_class: Mapping[int, Sequence[tuple]],
             iou_thresholds: Sequence[float] = IOU_THRESHOLDS,
             present_only: bool = False) -> dict[str, float]:
  """Query-AP and per-class APs, by pycocotools.

  Args:
    runs_by_class: {query class: [(gt boxes of that class, detected boxes,
      scores), ...]}, one run per evaluated (image, query).
    iou_thresholds: IoU thresholds averaged over.
    present_only: Score only the runs whose image holds the queried class.

  Returns:
    {'query_AP': mean over classes with ground truth, 'AP/<class>': ...}.

  Raises:
    ValueError: if no query class has a ground-truth box.
  """
  images, truth, found = [], [], []
  for cls, runs in runs_by_class.items():
    for gt, boxes, scores in runs:
      gt = _coco_boxes(gt)
      if present_only and not gt:
        continue
      image = len(images) + 1
      images.append({'id': image})
      for box in gt:
        truth.append({'id': len(truth) + 1, 'image_id': image,
                      'category_id': int(cls), 'bbox': box,
                      'area': box[2] * box[3], 'iscrowd': 0})
      for box, score in zip(_coco_boxes(boxes),
                            np.asarray(scores, np.float64).reshape(-1)):
        found.append({'id': len(found) + 1, 'image_id': image,
                      'category_id': int(cls), 'bbox': box,
                      'area': box[2] * box[3], 'iscrowd': 0,
                      'score': float(score)})
  classes = sorted(int(c) for c in runs_by_class)
  categories = [{'id': c} for c in classes]
  evaluator = cocoeval.COCOeval(_coco(images, categories, truth),
                                _coco(images, categories, found), 'bbox')
  evaluator.params.iouThrs = np.asarray(iou_thresholds, np.float64)
  evaluator.params.maxDets = [MAX_DETECTIONS]
  evaluator.params.areaRng = [[0, 1e10]]
  evaluator.params.areaRngLbl = ['all']
  with contextlib.redirect_stdout(io.StringIO()):
    evaluator.evaluate()
    evaluator.accumulate()
  # precision: [IoU thresholds, recall points, classes, areas, max dets].
  precision = evaluator.eval['precision'][:, :, :, 0, 0]
  per_class = {}
  for k, cls in enumerate(evaluator.params.catIds):
    values = precision[:, :, k]
    if (values > -1).any():
      per_class[f'AP/{cls}'] = float(values[values > -1].mean())
  if not per_class:
    raise ValueError('No query class has a ground-truth box: query-AP is '
                     'undefined.')
  return {'query_AP': float(np.mean(list(per_class.values()))), **per_class}
