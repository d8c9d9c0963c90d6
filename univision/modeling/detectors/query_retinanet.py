"""Query-modulated RetinaNet: a standard head and a query head on one trunk.

Fornoni et al., "Bridging the Gap Between Object Detection and User Intent via
Query-Modulation" (arXiv 2106.10258): the detector is trained jointly for
standard detection and for detection modulated by a query. Here one backbone +
decoder (any Model Garden RetinaNet, e.g. MobileNetV4 + FPN or SSDLite
features) feeds

- the standard RetinaNet head (all classes), on the decoder features;
- a query head, a second RetinaNet head with one foreground class ("what
  the query asks for"), on the decoder features modulated by the query's
  embedding (`QueryEmbedding`, or a query vector given directly): FiLM
  (`QueryFiLM`, default) or concat-and-project (`QueryConcat`).

Box decoding and NMS are Model Garden's detection generator for both heads;
query detections come out under `query_detection_*`.
"""
from typing import Any, Mapping

import tensorflow as tf, tf_keras
from official.vision.modeling import retinanet_model
from official.vision.modeling.heads import dense_prediction_heads
from official.vision.modeling.layers import detection_generator
from official.vision.ops import anchor

from univision.modeling.layers import query_concat
from univision.modeling.layers import query_embedding as embedding_lib
from univision.modeling.layers import query_film

QUERY_CLASSES = 2  # Background + "the queried object".
# Query modulation of the decoder levels, by name.
MODULATIONS = {'film': query_film.QueryFiLM,
               'concat': query_concat.QueryConcat}
_DETECTION_KEYS = ('detection_boxes', 'detection_scores', 'detection_classes',
                   'num_detections')


class QueryRetinaNetModel(tf_keras.Model):
  """Standard + query-modulated detection from one backbone and decoder."""

  def __init__(self, detector: retinanet_model.RetinaNetModel,
               query_head: tf_keras.layers.Layer,
               modulation: tf_keras.layers.Layer,
               query_embedding: embedding_lib.QueryEmbedding, **kwargs):
    """Initializes the model.

    Args:
      detector: A Model Garden RetinaNet (backbone, decoder, head, detection
        generator, anchor settings); its head is the standard head.
      query_head: A RetinaNet head with `QUERY_CLASSES` classes.
      modulation: The query modulation of the decoder levels
        (`MODULATIONS`).
      query_embedding: Class id -> query vector.
      **kwargs: `tf_keras.Model` arguments.
    """
    super().__init__(**kwargs)
    self.detector = detector
    self.query_head = query_head
    self.modulation = modulation
    self.query_embedding = query_embedding

  @property
  def backbone(self):
    return self.detector.backbone

  @property
  def decoder(self):
    return self.detector.decoder

  @property
  def head(self):
    return self.detector.head

  @property
  def checkpoint_items(self) -> Mapping[str, Any]:
    return {**self.detector.checkpoint_items, 'query_head': self.query_head,
            'modulation': self.modulation, 'query_embedding': self.query_embedding}

  def _anchors(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
    config = self.detector.get_config()
    _, height, width, _ = images.get_shape().as_list()
    boxes = anchor.Anchor(
        min_level=config['min_level'], max_level=config['max_level'],
        num_scales=config['num_scales'],
        aspect_ratios=config['aspect_ratios'],
        anchor_size=config['anchor_size'],
        image_size=(height, width)).multilevel_boxes
    batch = tf.shape(images)[0]
    return {level: tf.tile(b[None], [batch, 1, 1, 1])
            for level, b in boxes.items()}

  def call(self, images: tf.Tensor, query_ids: tf.Tensor | None = None,
           query_vectors: tf.Tensor | None = None,
           image_shape: tf.Tensor | None = None,
           anchor_boxes: Mapping[str, tf.Tensor] | None = None,
           training: bool | None = None) -> dict[str, Any]:
    """Runs the standard head, and the query head if a query is given.

    Args:
      images: [B, H, W, 3] normalized images.
      query_ids: [B] int query class ids (1..num_classes-1).
      query_vectors: [B, D] query vectors, instead of `query_ids`.
      image_shape: [B, 2] unpadded image sizes, for box clipping.
      anchor_boxes: Anchors for inference; default: made for `images`.
      training: Training mode.

    Returns:
      Raw outputs `cls_outputs`, `box_outputs` (and with a query
      `query_cls_outputs`, `query_box_outputs`); in inference also the
      standard detections (`detection_*`) and the query's
      (`query_detection_*`). Without a query the model is the standard
      detector (Model Garden's evaluation calls it so).
    """
    if query_ids is not None and query_vectors is not None:
      raise ValueError('Give one of query_ids or query_vectors, not both.')
    features = self.detector.backbone(images, training=training)
    if self.detector.decoder:
      features = self.detector.decoder(features, training=training)
    scores, boxes, _ = self.detector.head(features, training=training)
    heads = {'': (boxes, scores)}
    if query_ids is not None or query_vectors is not None:
      query = (query_vectors if query_vectors is not None
               else self.query_embedding(query_ids))
      query_scores, query_boxes, _ = self.query_head(
          self.modulation(features, query), training=training)
      heads['query_'] = (query_boxes, query_scores)
    outputs = {}
    for prefix, (b, s) in heads.items():
      outputs.update({prefix + 'cls_outputs': s, prefix + 'box_outputs': b})
    if training:
      return outputs
    anchors = anchor_boxes if anchor_boxes is not None else self._anchors(
        images)
    for prefix, (b, s) in heads.items():
      results = self.detector.detection_generator(b, s, anchors, image_shape)
      outputs.update({prefix + k: results[k] for k in _DETECTION_KEYS})
    return outputs


def build(detector: retinanet_model.RetinaNetModel, num_classes: int,
          embedding_dim: int | None = 64, vectors_path: str | None = None,
          trainable_vectors: bool = False,
          modulation: str = 'film') -> QueryRetinaNetModel:
  """Adds a query head, FiLM and query embeddings to a Model Garden RetinaNet.

  Args:
    detector: The standard detector (e.g. from Model Garden's factory).
    num_classes: Its `num_classes` (query ids are class ids).
    embedding_dim: Size of a learned query table (None with
      `vectors_path`: the file's size).
    vectors_path: A `.npy` of fixed [num_classes, dim] query vectors.
    trainable_vectors: Whether the file's vectors are fine-tuned.
    modulation: A key of `MODULATIONS`.
  """
  if modulation not in MODULATIONS:
    raise ValueError(f'task.query.modulation: {modulation!r}; choose from '
                     f'{sorted(MODULATIONS)}.')
  if not isinstance(detector.detection_generator,
                    detection_generator.MultilevelDetectionGenerator):
    raise ValueError('The detector needs Model Garden\'s multilevel '
                     'detection generator.')
  head_config = dict(detector.head.get_config(), num_classes=QUERY_CLASSES)
  query_head = dense_prediction_heads.RetinaNetHead.from_config(head_config)
  levels = [str(l) for l in range(head_config['min_level'],
                                  head_config['max_level'] + 1)]
  widths = {int(detector.decoder.output_specs[l][-1]) for l in levels}
  if len(widths) != 1:
    raise ValueError(f'Decoder levels {levels} differ in width {widths}; '
                     'the heads need one width.')
  layer = MODULATIONS[modulation](levels, widths.pop())
  embedding = embedding_lib.QueryEmbedding(
      num_classes, None if vectors_path else embedding_dim, vectors_path,
      trainable_vectors)
  return QueryRetinaNetModel(detector, query_head, layer, embedding)
