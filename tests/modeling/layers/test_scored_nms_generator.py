"""The v2 NMS cut to the scored boxes gives Model Garden's detections."""
import numpy as np
import pytest
import tensorflow as tf
from official.vision.modeling.layers import detection_generator
from official.vision.ops import anchor

from univision.modeling.layers import scored_nms_generator

_KEYS = ('detection_boxes', 'detection_scores', 'detection_classes',
         'num_detections')


def _inputs(batch, classes, logit_mean, seed, tied=False):
  """Raw head outputs and anchors at levels 3-4 of a 128x128 image.

  9 anchors per place, 2,880 in all (6 NMS tiles of 512).
  """
  boxes = anchor.Anchor(min_level=3, max_level=4, num_scales=3,
                        aspect_ratios=[0.5, 1.0, 2.0], anchor_size=3,
                        image_size=(128, 128)).multilevel_boxes
  rng = np.random.default_rng(seed)
  raw_boxes, raw_scores, anchors = {}, {}, {}
  for level, b in boxes.items():
    h, w, _ = b.shape
    raw_boxes[level] = tf.constant(rng.normal(0, 0.5, [batch, h, w, 36]),
                                   tf.float32)
    logits = rng.normal(logit_mean, 2.0, [batch, h, w, 9 * classes])
    if tied:  # Many equal scores: the sort's ties must break alike.
      logits = np.round(logits)
    raw_scores[level] = tf.constant(logits, tf.float32)
    anchors[level] = tf.tile(b[None], [batch, 1, 1, 1])
  image_shape = tf.constant([[128, 128]] * batch, tf.float32)
  return raw_boxes, raw_scores, anchors, image_shape


def _generators(**overrides):
  config = dict(apply_nms=True, pre_nms_top_k=5000,
                pre_nms_score_threshold=0.05, nms_iou_threshold=0.5,
                max_num_detections=100, nms_version='v2')
  config.update(overrides)
  return (detection_generator.MultilevelDetectionGenerator(**config),
          scored_nms_generator.ScoredNmsDetectionGenerator(**config))


@pytest.mark.parametrize('classes, logit_mean, tied, top_k', [
    (3, -9.0, False, 5000),   # A few scored boxes: each one is detected.
    (4, -6.0, False, 5000),   # ~100-200 scored boxes per class: one tile.
    (2, -1.0, False, 5000),   # ~1,000 per class: several tiles of scored.
    (3, -4.0, True, 5000),    # Ties in the sort.
    (3, -4.0, False, 300),    # pre_nms_top_k below the anchors.
    (2, -40.0, False, 5000),  # Nothing scored: no detections.
])
def test_same_detections_as_model_garden(classes, logit_mean, tied, top_k):
  inputs = _inputs(2, classes, logit_mean, seed=classes, tied=tied)
  model_garden, scored = _generators(pre_nms_top_k=top_k)
  # Both in a graph, as a model runs them (eager decoding can differ from
  # the graph's in the last bit).
  expected = tf.function(model_garden)(*inputs)
  got = tf.function(scored)(*inputs)
  for key in _KEYS:
    np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
  if logit_mean > -10:
    assert int(tf.reduce_min(got['num_detections'])) > 0


def test_other_nms_settings_run_model_gardens_code():
  inputs = _inputs(1, 2, -6.0, seed=7)
  for overrides in (dict(nms_version='v1'),
                    dict(use_class_agnostic_nms=True),
                    dict(apply_nms=False)):
    model_garden, scored = _generators(**overrides)
    assert not scored._uses_scored_nms(None)  # pylint: disable=protected-access
    expected, got = model_garden(*inputs), scored(*inputs)
    assert set(got) == set(expected)
    for key in got:
      if isinstance(got[key], tf.Tensor):
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


def test_config_round_trips():
  _, scored = _generators(max_num_detections=50)
  again = scored_nms_generator.ScoredNmsDetectionGenerator.from_config(
      scored.get_config())
  assert again.get_config() == scored.get_config()
