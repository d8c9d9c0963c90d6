"""SavedModel export of a query-modulated detector: (image, query) in.

Model Garden's detection export module serves images only; this module
adds the query. Signatures:

- `serving_default`: `images` uint8 [B, H, W, 3] and `query_ids` int32 [B]
  (class ids as in the label map, or referring queries' ids,
  `core.query_vocabulary`): the detections of the query's class from the
  query-modulated pass (`detection_*`; for a referring query its best
  detection is the answer), and the standard pass's detections of every
  class (`standard_detection_*`). An id outside the vocabulary (0, the
  background, or too large) fails with an error naming the valid range,
  never an empty result.
- `serving_standard`: `images` only: the standard detector (`detection_*`).
- `serving_query_vector`: `images` and `query_vectors` float32 [B, D] (e.g.
  a text embedding of a class name, in the space of the query vectors the
  model was trained with): the modulated pass's detections of every class.

Boxes are in input-image pixels (Model Garden's preprocessing: normalize,
resize to the model size; boxes scaled back).
"""
import tensorflow as tf, tf_keras
from official.vision.serving import detection

from univision.core import checkpoints
from univision.core import query_vocabulary
from univision.modeling.detectors import query_retinanet
from univision.serving import saved_model

_KEYS = ('detection_boxes', 'detection_scores', 'detection_classes',
         'num_detections')


class QueryDetectionModule(detection.DetectionModule):
  """Model Garden's detection module with a query input."""

  def _build_model(self) -> tf_keras.Model:
    model = query_retinanet.build_for_task(
        super()._build_model(), self.params.task,
        query_vocabulary.QueryVocabulary.of_task(self.params.task)
        .class_table())
    size = [self._batch_size or 1, *self._padded_size, 3]
    model(tf.zeros(size), query_ids=tf.ones([size[0]], tf.int32),
          training=False)
    return model

  def serve_query(self, images: tf.Tensor, query_ids=None,
                  query_vectors=None) -> dict[str, tf.Tensor]:
    """Detections of the query (and the standard ones), or the standard."""
    images, anchor_boxes, image_info = self.preprocess(images)
    outputs = self.model(images, query_ids=query_ids,
                         query_vectors=query_vectors,
                         image_shape=image_info[:, 1, :],
                         anchor_boxes=anchor_boxes, training=False)
    scale = tf.tile(image_info[:, 2:3, :], [1, 1, 2])
    queried = query_ids is not None or query_vectors is not None
    renamed = ((('query_', ''), ('', 'standard_')) if queried
               else (('', ''),))
    served = {}
    for prefix, out in renamed:
      for key in _KEYS:
        value = outputs[prefix + key]
        served[out + key] = value / scale if key == 'detection_boxes' else (
            value)
    return served

  def get_inference_signatures(self, function_keys=None):
    images = tf.TensorSpec([self._batch_size, None, None, 3], tf.uint8,
                           name='images')
    batch = self._batch_size
    by_id = tf.function(lambda images, query_ids: self.serve_query(
        images, query_ids=query_ids))
    by_vector = tf.function(lambda images, query_vectors: self.serve_query(
        images, query_vectors=query_vectors))
    standard = tf.function(self.serve_query)
    dim = self.model.query_embedding.table.shape[-1]
    return {
        'serving_default': by_id.get_concrete_function(
            images, tf.TensorSpec([batch], tf.int32, name='query_ids')),
        'serving_standard': standard.get_concrete_function(images),
        'serving_query_vector': by_vector.get_concrete_function(
            images, tf.TensorSpec([batch, dim], tf.float32,
                                  name='query_vectors')),
    }


def export(params, checkpoint_path: str, export_dir: str,
           batch_size: int | None = None) -> str:
  """Exports a query RetinaNet checkpoint as a SavedModel; returns its path."""
  module = QueryDetectionModule(
      params=params, batch_size=batch_size,
      input_image_size=[int(s) for s in params.task.model.input_size[:2]],
      input_type='image_tensor', num_channels=3)
  tf.train.Checkpoint(**module.model.checkpoint_items).read(
      checkpoints.resolve_checkpoint(checkpoint_path)
  ).expect_partial().assert_existing_objects_matched()
  with saved_model.without_keras_traces():
    tf.saved_model.save(module, export_dir,
                        signatures=module.get_inference_signatures())
  return export_dir
