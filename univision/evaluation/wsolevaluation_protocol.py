"""The reference evaluator's choices (clovaai/wsolevaluation), for comparable numbers.

`wsol_metrics` documents its own, cleaner conventions; published WSOL tables
(Choe et al., CVPR 2020, and the papers that use its code, e.g. iNatLoc500)
come from the reference evaluator, whose choices move the numbers by up to a
few points at small map sizes. `protocol: wsolevaluation` (`configs.wsol`)
makes every one of them ours:

- the CAM is resized to the image with bicubic interpolation
  (cv2.INTER_CUBIC), then min-max normalised (a constant or NaN map
  becomes zeros);
- for boxes the normalised map is quantised to uint8 (`(cam * 255)`
  truncated) and thresholded strictly (`> int(t * max)`), as cv2.threshold
  with THRESH_BINARY on that image does;
- a contour's box ends at x + w, y + h (one past its last pixel) clipped to
  the image's last column / row, and IoU counts areas with +1
  (`wsol_metrics.box_iou`); a mask with no contour gives the box
  [0, 0, 0, 0];
- the threshold grid is `np.arange(0, 1, interval)` (interval 0.001 by
  default: accumulated steps, not k / n exactly);
- PxAP histograms the float map over bins [t_0, t_1), ..., [t_last, 1),
  [1, 2), [2, 3] (so pixels at exactly 1.0 form their own last point) and
  sums precision_k * (recall_k - recall_{k-1}) over thresholds from high to
  low, skipping thresholds no pixel reaches; pixels of an ignore region
  count neither way.

GT-known and Top-1 Loc follow the reference's MaxBoxAcc: the largest
contour's box at IoU 0.5, at the threshold where that accuracy is best.
"""
import cv2
import numpy as np

PROTOCOLS = ('univision', 'wsolevaluation')


def reference_grid(interval: float = 0.001) -> np.ndarray:
  """The reference's CAM thresholds, `np.arange(0, 1, interval)`."""
  if not 0 < interval <= 1:
    raise ValueError(f'CAM threshold interval {interval} is not in (0, 1].')
  return np.arange(0, 1, interval)


def normalize_scoremap(cam: np.ndarray) -> np.ndarray:
  """Min-max normalisation; a map with NaN, or constant, becomes zeros."""
  cam = np.array(cam, np.float64)
  if np.isnan(cam).any() or cam.min() == cam.max():
    return np.zeros_like(cam)
  cam -= cam.min()
  return cam / cam.max()


def resize_and_normalize(cam: np.ndarray, height: int,
                         width: int) -> np.ndarray:
  """A raw CAM at the image's size (bicubic), normalised as the reference."""
  cam = np.asarray(cam, np.float32)
  if cam.ndim != 2 or not cam.size:
    raise ValueError(f'Expected a non-empty 2-D CAM, got shape {cam.shape}.')
  return normalize_scoremap(cv2.resize(cam, (width, height),
                                       interpolation=cv2.INTER_CUBIC))


def contour_boxes(cam: np.ndarray,
                  threshold: float) -> tuple[np.ndarray, int]:
  """Every contour's box [K, 4] and the index of the largest contour.

  Args:
    cam: [H, W] map normalised to [0, 1].
    threshold: CAM threshold in [0, 1].
  """
  height, width = cam.shape
  image = (cam * 255).astype(np.uint8)
  mask = (image > int(threshold * image.max())).astype(np.uint8)
  contours, _ = cv2.findContours(mask, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
  if not contours:
    return np.zeros((1, 4), np.int64), 0
  rects = np.array([cv2.boundingRect(c) for c in contours], np.int64)
  ends = np.minimum(rects[:, :2] + rects[:, 2:], [width - 1, height - 1])
  boxes = np.concatenate([rects[:, :2], ends], 1)
  return boxes, int(np.argmax([cv2.contourArea(c) for c in contours]))


class PxAPAccumulator:
  """PxAP as the reference computes it, in percent.

  Args:
    thresholds: increasing CAM thresholds in [0, 1), e.g. `reference_grid()`.
  """

  def __init__(self, thresholds: np.ndarray):
    self.edges = np.append(np.asarray(thresholds, np.float64),
                           [1.0, 2.0, 3.0])
    if (np.diff(self.edges) <= 0).any() or self.edges[0] < 0:
      raise ValueError('Thresholds must increase within [0, 1); got '
                       f'{list(thresholds)[:5]}...')
    self._positive = np.zeros(len(self.edges) - 1, np.int64)
    self._negative = np.zeros(len(self.edges) - 1, np.int64)

  def update(self, cam: np.ndarray, mask: np.ndarray,
             ignore: np.ndarray | None = None) -> None:
    """Adds a normalised map, its object mask and an optional ignore mask."""
    cam = np.asarray(cam, np.float64)
    mask = np.asarray(mask, bool)
    ignore = (np.zeros_like(mask) if ignore is None
              else np.asarray(ignore, bool))
    if not cam.shape == mask.shape == ignore.shape:
      raise ValueError(f'cam {cam.shape}, mask {mask.shape} and ignore '
                       f'{ignore.shape} shapes differ.')
    if (mask & ignore).any():
      raise ValueError('Ignore and object masks intersect.')
    self._positive += np.histogram(cam[mask], self.edges)[0]
    self._negative += np.histogram(cam[~mask & ~ignore], self.edges)[0]

  def result(self) -> dict[str, float]:
    """{'PxAP': percent}."""
    true_pos = self._positive[::-1].cumsum()  # Thresholds high to low.
    false_pos = self._negative[::-1].cumsum()
    if not true_pos[-1]:
      raise ValueError('No positive ground-truth pixel: PxAP is undefined.')
    predicted = true_pos + false_pos
    reached = predicted[1:] > 0
    precision = true_pos[1:][reached] / predicted[1:][reached]
    gains = np.diff(true_pos / true_pos[-1])[reached]
    return {'PxAP': 100 * float((precision * gains).sum())}
