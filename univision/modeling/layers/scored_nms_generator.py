"""Model Garden's multilevel detection generator, its v2 NMS cut to the scored boxes.

Why our own: Model Garden's `nms_version: v2` sorts each class's
`pre_nms_top_k` candidates, turns those at or under
`pre_nms_score_threshold` into dots (zero boxes, score -1) and runs its
padded, tiled suppression (`nms.sorted_non_max_suppression_padded`, tiles
of 512) over all of them. A dot can neither suppress a box nor be kept, yet
every tile of dots is compared with every tile before it: with 3,060
anchors and ~100 scored boxes per class, the tiles of dots are most of the
work, ~20 ms per image and class on a 2-vCPU CPU, and most of a detection
evaluation's time.

`ScoredNmsDetectionGenerator` runs the same steps (Model Garden's decoding,
the same per-class sort, score filter and suppression function) on each
class's sorted candidates cut to the longest run of scored boxes of any
image and class in the batch. The dots it leaves out come after every
scored box in the sort, so the detections are Model Garden's (tested equal,
padding included). Other settings (v1, batched, v3, class-agnostic NMS,
attributes, TFLite post-processing, no NMS) go to Model Garden's own code.
"""
import contextlib
from typing import Any, Mapping

import tensorflow as tf, tf_keras
from official.vision.modeling import retinanet_model
from official.vision.modeling.layers import detection_generator
from official.vision.ops import box_ops
from official.vision.ops import nms


def scored_v2_nms(boxes: tf.Tensor, scores: tf.Tensor, pre_nms_top_k: int,
                  pre_nms_score_threshold: float, nms_iou_threshold: float,
                  max_num_detections: int
                  ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
  """Model Garden's class-aware v2 NMS on the scored candidates only.

  Args:
    boxes: Decoded boxes [B, N, num_classes or 1, 4].
    scores: Class probabilities [B, N, num_classes] (background dropped).
    pre_nms_top_k: Candidates per class before the score filter.
    pre_nms_score_threshold: Candidates scoring at or under it are dropped.
    nms_iou_threshold: Suppression IoU.
    max_num_detections: Detections kept per image.

  Returns:
    (boxes [B, D, 4], scores [B, D], classes [B, D] from 0, valid [B]),
    D = `max_num_detections`, as Model Garden's `_generate_detections_v2`.
  """
  batch = tf.shape(boxes)[0]
  _, num_anchors, num_classes = scores.get_shape().as_list()
  boxes_per_class = boxes.get_shape().as_list()[2]
  k = min(num_anchors, pre_nms_top_k)
  rows = tf.reshape(tf.transpose(scores, [0, 2, 1]), [-1, num_anchors])
  top_scores, top_indices = tf.nn.top_k(rows, k=k, sorted=True)
  top_scores = tf.reshape(top_scores, [batch, num_classes, k])
  top_indices = tf.reshape(top_indices, [batch, num_classes, k])
  # Sorted, so each row's scored boxes come first: keep the longest run.
  scored = tf.reduce_sum(
      tf.cast(top_scores > pre_nms_score_threshold, tf.int32), axis=-1)
  keep = tf.maximum(tf.reduce_max(scored), 1)
  top_scores, top_indices = top_scores[:, :, :keep], top_indices[:, :, :keep]
  kept_boxes, kept_scores, kept_classes = [], [], []
  for i in range(num_classes):
    boxes_i = tf.gather(boxes[:, :, min(boxes_per_class - 1, i), :],
                        top_indices[:, i], batch_dims=1, axis=1)
    boxes_i, scores_i = box_ops.filter_boxes_by_scores(
        boxes_i, top_scores[:, i], min_score_threshold=pre_nms_score_threshold)
    nms_scores, nms_boxes = nms.sorted_non_max_suppression_padded(
        tf.cast(scores_i, tf.float32), tf.cast(boxes_i, tf.float32),
        max_num_detections, iou_threshold=nms_iou_threshold)
    kept_boxes.append(nms_boxes)
    kept_scores.append(nms_scores)
    kept_classes.append(tf.fill([batch, max_num_detections], i))
  all_scores = tf.concat(kept_scores, axis=1)
  final_scores, order = tf.nn.top_k(all_scores, k=max_num_detections,
                                    sorted=True)
  final_boxes = tf.gather(tf.concat(kept_boxes, axis=1), order, batch_dims=1,
                          axis=1)
  final_classes = tf.gather(tf.concat(kept_classes, axis=1), order,
                            batch_dims=1)
  valid = tf.reduce_sum(tf.cast(final_scores > 0.0, tf.int32), axis=1)
  return final_boxes, final_scores, final_classes, valid


@tf_keras.utils.register_keras_serializable(package='univision')
class ScoredNmsDetectionGenerator(
    detection_generator.MultilevelDetectionGenerator):
  """Model Garden's generator; its class-aware v2 NMS skips unscored boxes."""

  def _uses_scored_nms(self, raw_attributes) -> bool:
    config = self._config_dict
    return bool(config['apply_nms'] and config['nms_version'] == 'v2' and
                not config['use_class_agnostic_nms'] and not raw_attributes)

  def __call__(self, raw_boxes: Mapping[str, tf.Tensor],
               raw_scores: Mapping[str, tf.Tensor],
               anchor_boxes: Mapping[str, tf.Tensor], image_shape: tf.Tensor,
               raw_attributes: Mapping[str, tf.Tensor] | None = None
               ) -> Mapping[str, Any]:
    """Model Garden's outputs (see its `MultilevelDetectionGenerator`)."""
    if not self._uses_scored_nms(raw_attributes):
      return super().__call__(raw_boxes, raw_scores, anchor_boxes,
                              image_shape, raw_attributes)
    config = self._config_dict
    boxes, scores, attributes = self._decode_multilevel_outputs(
        raw_boxes, raw_scores, anchor_boxes, image_shape, raw_attributes)
    with (tf.device('cpu:0') if config['use_cpu_nms']
          else contextlib.nullcontext()):
      nmsed_boxes, nmsed_scores, nmsed_classes, valid = scored_v2_nms(
          boxes, scores, config['pre_nms_top_k'],
          config['pre_nms_score_threshold'], config['nms_iou_threshold'],
          config['max_num_detections'])
    decoded = ({'decoded_boxes': boxes, 'decoded_box_scores': scores,
                'decoded_box_attributes': attributes}
               if config['return_decoded'] else {})
    return {**decoded, 'num_detections': valid,
            'detection_boxes': nmsed_boxes,
            'detection_classes': nmsed_classes + 1,  # Background is 0.
            'detection_scores': nmsed_scores, 'detection_attributes': {}}


def with_scored_nms(model: retinanet_model.RetinaNetModel
                    ) -> retinanet_model.RetinaNetModel:
  """Model Garden's RetinaNet with its generator's NMS cut to scored boxes.

  The same backbone, decoder and head objects (so the same checkpoint
  layout) under a new `RetinaNetModel`; call it before building the model.
  """
  config = dict(model.get_config())
  config['detection_generator'] = ScoredNmsDetectionGenerator(
      **model.detection_generator.get_config())
  return retinanet_model.RetinaNetModel(**config)
