"""Query-modulated RetinaNet: the query steers the features, one shared head.

Fornoni et al., "Bridging the Gap Between Object Detection and User Intent
via Query-Modulation" (arXiv 2106.10258): a capacity-constrained mobile
detector modulated by an embedding of the user's query finds the objects of
the queried label better than the standard detector, and one model can be
trained for query-modulated and standard detection at once. Here, on any
Model Garden RetinaNet whose backbone is univision's MobileNetV4 (FPN or
SSDLite features):

- The query (an id through `QueryEmbedding`: a class, or a referring
  query such as "the largest c", whose class the `query_classes` table
  gives - `core.query_vocabulary` makes it; or a vector given directly,
  e.g. a text embedding) modulates the features inside the
  feature extractor: every backbone block of the levels `backbone_levels`
  (default 4 and 5, the last two stages), on its output or (placement
  'pre_activation') inside it, after a batch norm, and every decoder
  level, each site by its own zero-initialised modulation (FiLM by
  default; `QueryModulationSites`).
- One multi-class head, shared: the standard pass (no query) and the query
  pass run the same backbone blocks (those before the first modulated block
  once, for both), decoder and head. The query pass reads the scores of
  q's class.
  With zero modulation its detections for q are exactly the standard
  detector's detections of class q; training can only specialise the
  features to the query.
- Batch norm (`query_batch_norm`): in training the query pass normalises
  with its own batch's statistics ('batch') or with the moving statistics
  ('moving'), which then only the standard pass updates. With 'batch' the
  moving statistics average both passes' features, so neither pass is
  evaluated with its own, and the standard detector can fall far below
  its training-mode self (docs/query_detection.md); with 'moving' the query
  pass is normalised alike in training and inference, and the standard
  detector's statistics are its own.

"Detections of class q" run Model Garden's detection generator on q's
logits alone (`class_logits`), so q's boxes do not compete with other
classes' for the `max_num_detections` slots, and query detections and the
standard detector filtered to q are made the same way. The generator's NMS
is per class and does the same work for a class whatever its scores, so
one class instead of all K (every other class masked, as before) gives the
same detections at about 1/K of the cost (tested against the masked run).
"""
from typing import Any, Mapping, Sequence

import tensorflow as tf, tf_keras
from official.vision.modeling import retinanet_model
from official.vision.modeling.layers import detection_generator
from official.vision.ops import anchor

from univision.modeling.layers import query_embedding as embedding_lib
from univision.modeling.layers import query_modulation_sites as sites_lib
from univision.modeling.layers import scored_nms_generator

_DETECTION_KEYS = ('detection_boxes', 'detection_scores', 'detection_classes',
                   'num_detections')
_MASKED_LOGIT = -1e4  # sigmoid: exactly 0 in float32 and float16.
QUERY_BATCH_NORMS = ('batch', 'moving')


def block_levels(backbone: tf_keras.Model) -> list[int]:
  """The feature level (log2 of the stride) of each backbone block's output.

  Raises:
    ValueError: if the backbone is not a chain of blocks with a spec table
      (univision's MobileNetV4).
  """
  spec = getattr(backbone, 'model_spec', None)
  if spec is None or not hasattr(backbone, 'blocks'):
    raise ValueError(
        f'Query modulation inside the backbone needs univision\'s '
        f'MobileNetV4 (task.model.backbone.type mobilenet_v4); got '
        f'{type(backbone).__name__}.')
  stride, levels = 1, []
  for block in spec.blocks:
    stride *= block.strides
    levels.append(stride.bit_length() - 1)
  return levels


def class_logits(scores: Mapping[str, tf.Tensor], classes: tf.Tensor,
                 num_classes: int) -> dict[str, tf.Tensor]:
  """Per-level head logits of class `classes` [B] alone, as a 2-class head.

  The head's last axis is anchor-major ([A * num_classes], as Model Garden's
  RetinaNet head and losses lay it out). Each anchor keeps its logit of its
  image's class, behind a background column (class 0, which the detection
  generator drops): [B, H, W, A * 2]. The generator then reports that class
  as class 1.
  """
  picked = {}
  for level, s in scores.items():
    shape = tf.shape(s)
    anchors = s.shape[-1] // num_classes
    per_anchor = tf.reshape(s, [shape[0], shape[1], shape[2], anchors,
                                num_classes])
    logits = tf.gather(per_anchor, tf.cast(classes, tf.int32), axis=4,
                       batch_dims=1)
    background = tf.fill(tf.shape(logits), tf.constant(_MASKED_LOGIT,
                                                       s.dtype))
    picked[level] = tf.reshape(tf.stack([background, logits], axis=-1),
                               [shape[0], shape[1], shape[2], anchors * 2])
  return picked


class QueryRetinaNetModel(tf_keras.Model):
  """Standard and query-modulated detection with one backbone and head."""

  def __init__(self, detector: retinanet_model.RetinaNetModel,
               modulation: sites_lib.QueryModulationSites,
               query_embedding: embedding_lib.QueryEmbedding,
               num_classes: int, query_classes: Sequence[int],
               query_batch_norm: str = 'batch', **kwargs):
    """Initializes the model.

    Args:
      detector: A Model Garden RetinaNet with univision's MobileNetV4
        backbone (its blocks run one by one here) and its multi-class head.
      modulation: The query's sites and modulations.
      query_embedding: Query id -> query vector.
      num_classes: The head's classes (background included).
      query_classes: The head class (column) of every query id.
      query_batch_norm: 'batch' or 'moving': the statistics the query
        pass's batch norms use in training (downstream of its first
        modulation; those before it run once for both passes).
      **kwargs: `tf_keras.Model` arguments.

    Raises:
      ValueError: for another `query_batch_norm`.
    """
    super().__init__(**kwargs)
    if query_batch_norm not in QUERY_BATCH_NORMS:
      raise ValueError(f'task.query.query_batch_norm: {query_batch_norm!r}; '
                       f'expected one of {QUERY_BATCH_NORMS}.')
    self._query_training = query_batch_norm == 'batch'
    self.detector = detector
    self.modulation = modulation
    self.query_embedding = query_embedding
    self._num_classes = num_classes
    self._query_classes = tf.constant(list(query_classes), tf.int32)
    self._block_levels = block_levels(detector.backbone)
    self._endpoints = list(detector.backbone.output_specs)
    # The detector's generator, its v2 NMS cut to the scored boxes (same
    # detections, several times faster on a CPU; `scored_nms_generator`).
    self.detection_generator = (
        scored_nms_generator.ScoredNmsDetectionGenerator(
            **detector.detection_generator.get_config()))

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
    return {**self.detector.checkpoint_items, 'modulation': self.modulation,
            'query_embedding': self.query_embedding}

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

  def _backbone_passes(self, images: tf.Tensor, query: tf.Tensor | None,
                       training: bool | None, standard: bool = True
                       ) -> list[dict[str, tf.Tensor]]:
    """Backbone endpoints: [standard], [standard, query-modulated], or
    (`standard` False) [query-modulated].

    The blocks before the first modulated one run once for both passes.
    """
    blocks = self.detector.backbone.blocks
    first = (self.modulation.block_indices[0]
             if query is not None and self.modulation.block_indices
             else len(blocks))
    x, levels = images, {}
    for index in range(first):
      x = blocks[index](x, training=training)
      levels[str(self._block_levels[index])] = x
    passes = [(x, dict(levels), None)] if standard else []
    if query is not None:
      passes.append((x, dict(levels), query))
    inside = self.modulation.block_placement == 'pre_activation'
    endpoints = []
    for x, levels, q in passes:
      mode = self._mode(training, q is not None)
      for index in range(first, len(blocks)):
        sited = q is not None and index in self.modulation.block_indices
        modulate = (lambda h, i=index, q=q: self.modulation.block(i, h, q)
                    ) if sited and inside else None
        x = blocks[index](x, training=mode, **(
            {'modulate': modulate} if modulate else {}))
        if sited and not inside:
          x = self.modulation.block(index, x, q)
        levels[str(self._block_levels[index])] = x
      endpoints.append({k: levels[k] for k in self._endpoints})
    return endpoints

  def _mode(self, training: bool | None, query_pass: bool) -> bool | None:
    """The training mode a pass's layers run in: the query pass's in
    inference mode (moving batch-norm statistics, not updated) with
    `query_batch_norm` 'moving'."""
    return training if not query_pass or self._query_training else False

  def _query(self, query_ids, query_vectors) -> tf.Tensor | None:
    if query_ids is not None and query_vectors is not None:
      raise ValueError('Give one of query_ids or query_vectors, not both.')
    if query_ids is not None:
      return self.query_embedding(query_ids)
    return query_vectors

  def call(self, images: tf.Tensor, query_ids: tf.Tensor | None = None,
           query_vectors: tf.Tensor | None = None,
           image_shape: tf.Tensor | None = None,
           anchor_boxes: Mapping[str, tf.Tensor] | None = None,
           training: bool | None = None,
           standard_pass: bool = True) -> dict[str, Any]:
    """Runs the standard pass, and the query pass if a query is given.

    Args:
      images: [B, H, W, 3] normalized images.
      query_ids: [B] int query ids (1..K-1 the classes, then referring
        queries: `query_classes`); an id outside them raises
        `InvalidArgumentError`.
      query_vectors: [B, D] query vectors, instead of `query_ids`.
      image_shape: [B, 2] unpadded image sizes, for box clipping.
      anchor_boxes: Anchors for inference; default: made for `images`.
      training: Training mode.
      standard_pass: With a query, False runs the query pass alone (no
        standard outputs, raw or detections): for callers that need only
        the query pass's (an evaluation asking every class). Without a
        query the standard pass runs whatever this says.

    Returns:
      The head's raw outputs `cls_outputs`, `box_outputs` (unless
      `standard_pass` is False; with a query also the query pass's,
      `query_cls_outputs`, `query_box_outputs`, all classes); in inference
      also the standard detections (`detection_*`) and the query pass's
      (`query_detection_*`): of q's class for `query_ids`, of every class
      for `query_vectors` (a vector names no class of the head). Without a
      query the model is the standard detector (Model Garden's evaluation
      calls it so).
    """
    query = self._query(query_ids, query_vectors)
    standard_pass = standard_pass or query is None
    passes = self._backbone_passes(images, query, training, standard_pass)
    prefixes = ([''] if standard_pass else []) + (
        ['query_'] if query is not None else [])
    outputs, heads = {}, {}
    for prefix, features in zip(prefixes, passes):
      mode = self._mode(training, bool(prefix))
      if self.detector.decoder:
        features = self.detector.decoder(features, training=mode)
      if prefix:
        features = self.modulation(features, query)
      scores, boxes, _ = self.detector.head(features, training=mode)
      heads[prefix] = (boxes, scores)
      outputs.update({prefix + 'cls_outputs': scores,
                      prefix + 'box_outputs': boxes})
    if training:
      return outputs
    anchors = anchor_boxes if anchor_boxes is not None else self._anchors(
        images)
    for prefix, (boxes, scores) in heads.items():
      if prefix and query_ids is not None:
        results = self._class_detections(boxes, scores,
                                         self.query_class(query_ids),
                                         anchors, image_shape)
      else:
        results = self.detection_generator(boxes, scores, anchors,
                                           image_shape)
      outputs.update({prefix + k: results[k] for k in _DETECTION_KEYS})
    return outputs

  def query_class(self, query_ids: tf.Tensor) -> tf.Tensor:
    """The head class of each query id [B]."""
    return tf.gather(self._query_classes, tf.cast(query_ids, tf.int32))

  def class_detections(self, outputs: Mapping[str, Any], prefix: str,
                       classes: tf.Tensor, image_shape: tf.Tensor | None,
                       anchor_boxes: Mapping[str, tf.Tensor]
                       ) -> dict[str, tf.Tensor]:
    """Detections of class `classes` [B] from one pass's raw outputs.

    E.g. `prefix=''`: the standard detector filtered to the queried class,
    made exactly as the query pass's detections are.
    """
    return self._class_detections(
        outputs[prefix + 'box_outputs'], outputs[prefix + 'cls_outputs'],
        classes, anchor_boxes, image_shape)

  def _class_detections(self, boxes: Mapping[str, tf.Tensor],
                        scores: Mapping[str, tf.Tensor], classes: tf.Tensor,
                        anchor_boxes: Mapping[str, tf.Tensor],
                        image_shape: tf.Tensor | None
                        ) -> dict[str, tf.Tensor]:
    """The generator's detections of class `classes` [B] alone."""
    results = self.detection_generator(
        boxes, class_logits(scores, classes, self._num_classes),
        anchor_boxes, image_shape)
    detections = {k: results[k] for k in _DETECTION_KEYS}
    found = detections['detection_classes']
    detections['detection_classes'] = tf.broadcast_to(
        tf.cast(classes, found.dtype)[:, None], tf.shape(found))
    return detections


def build(detector: retinanet_model.RetinaNetModel, num_classes: int,
          embedding_dim: int | None = 64, vectors_path: str | None = None,
          trainable_vectors: bool = False, modulation: str = 'film',
          backbone_levels: Sequence[int] = (4, 5),
          backbone_placement: str = 'output',
          decoder: bool = True,
          query_classes: Sequence[int] | None = None,
          query_batch_norm: str = 'batch') -> QueryRetinaNetModel:
  """Adds query modulation and query embeddings to a Model Garden RetinaNet.

  Args:
    detector: The standard detector (e.g. from Model Garden's factory), its
      backbone univision's MobileNetV4.
    num_classes: Its `num_classes` (query ids 1..num_classes-1 are its
      classes).
    embedding_dim: Size of a learned query table (None with
      `vectors_path`: the file's size).
    vectors_path: A `.npy` of fixed query vectors, one row per query id.
    trainable_vectors: Whether the file's vectors are fine-tuned.
    modulation: A key of `query_modulation_sites.MODULATIONS`.
    backbone_levels: Levels whose backbone blocks are modulated (every
      block whose output has that stride).
    backbone_placement: Where in those blocks (`query_modulation_sites.
      PLACEMENTS`): 'output', or 'pre_activation' (convolutional blocks
      only: not attention).
    decoder: Whether every decoder level (those the head reads) is
      modulated too.
    query_classes: The head class of every query id (id 0 first), e.g.
      `core.query_vocabulary.QueryVocabulary.class_table()` with referring
      queries; None: the ids are the classes.
    query_batch_norm: `QUERY_BATCH_NORMS`: the statistics the query pass's
      batch norms use in training.

  Raises:
    ValueError: naming the config key, for an unknown modulation or
      placement, a level the backbone lacks, a block without a
      normalised activation at placement 'pre_activation', no site at all,
      or a detector this cannot wrap.
  """
  if not isinstance(detector.detection_generator,
                    detection_generator.MultilevelDetectionGenerator):
    raise ValueError('The detector needs Model Garden\'s multilevel '
                     'detection generator.')
  levels = block_levels(detector.backbone)
  unknown = sorted(set(backbone_levels) - set(levels))
  if unknown:
    raise ValueError(f'task.query.backbone_levels: {list(backbone_levels)}; '
                     f'the backbone has no block at level(s) {unknown} '
                     f'(its blocks end at levels {sorted(set(levels))}).')
  if not backbone_levels and not decoder:
    raise ValueError('task.query: backbone_levels is empty and decoder is '
                     'false: the query would change nothing.')
  sited = [(i, b) for i, (b, level) in enumerate(
      zip(detector.backbone.blocks, levels)) if level in backbone_levels]
  if backbone_placement == 'pre_activation':
    plain = [f'{i} ({type(b).__name__})' for i, b in sited
             if not hasattr(b, 'pre_activation_channels')]
    if plain:
      raise ValueError(
          f'task.query.backbone_placement: pre_activation needs '
          f'convolutional blocks, but the blocks {plain} of levels '
          f'{list(backbone_levels)} have none.')
    blocks = {i: int(b.pre_activation_channels) for i, b in sited}
  else:
    blocks = {i: int(b.output_shape[-1]) for i, b in sited}
  head = detector.head.get_config()
  decoder_levels = {}
  if decoder:
    specs = (detector.decoder.output_specs if detector.decoder
             else detector.backbone.output_specs)
    decoder_levels = {str(l): int(specs[str(l)][-1])
                      for l in range(head['min_level'],
                                     head['max_level'] + 1)}
  sites = sites_lib.QueryModulationSites(
      modulation, blocks, decoder_levels, name='query_modulation',
      block_placement=backbone_placement)
  table = list(range(num_classes)) if query_classes is None else list(
      query_classes)
  if len(table) < num_classes or any(not 0 <= c < num_classes
                                     for c in table):
    raise ValueError(f'query_classes {table}: need a head class 0..'
                     f'{num_classes - 1} for each of at least {num_classes} '
                     'ids.')
  embedding = embedding_lib.QueryEmbedding(
      len(table), None if vectors_path else embedding_dim, vectors_path,
      trainable_vectors)
  return QueryRetinaNetModel(detector, sites, embedding, num_classes, table,
                             query_batch_norm)


def build_for_task(detector: retinanet_model.RetinaNetModel,
                   task_config: Any,
                   query_classes: Sequence[int] | None = None
                   ) -> QueryRetinaNetModel:
  """`build` with a query task config's `model.num_classes` and `query`.

  The model is run once with a query on zeros, so that every variable
  exists before training: a run that never takes the query pass (query
  weight 0) still checkpoints the (zero) modulations its evaluation loads.

  Args:
    detector: The task's standard detector.
    task_config: A `configs.query_retinanet.QueryRetinaNetTask` (read, not
      imported: modeling imports no config module).
    query_classes: The head class of every query id; required with
      `query.referring_rules` (the caller's
      `core.query_vocabulary.QueryVocabulary.of_task(...).class_table()`).

  Raises:
    ValueError: for referring rules without `query_classes`.
  """
  query = task_config.query
  if query.referring_rules and query_classes is None:
    raise ValueError('task.query.referring_rules needs the query_classes '
                     'table of their query ids (core.query_vocabulary).')
  model = build(detector, task_config.model.num_classes, query.embedding_dim,
                query.vectors_path or None, query.trainable_vectors,
                query.modulation, list(query.backbone_levels),
                query.backbone_placement, query.decoder, query_classes,
                query.query_batch_norm)
  model(tf.zeros([1, *task_config.model.input_size]),
        query_ids=tf.ones([1], tf.int32), training=False)
  return model
