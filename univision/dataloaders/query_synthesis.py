"""Query-modulated detection examples synthesized from ordinary detection data.

Fornoni et al., "Bridging the Gap Between Object Detection and User Intent via
Query-Modulation" (arXiv 2106.10258): a query names what the user wants found,
and the training queries are synthesized from standard detection annotations.
Per example, `synthesize` picks the query class:

- with probability `absent_probability` (and if some class is absent), a
  class NOT in the image: the query-modulated head must find nothing;
- otherwise one of the classes present, uniformly over distinct classes:
  the positives are that class's boxes only.

`query_classes` narrows both pools to some classes: with one class every
example queries it (present or absent), which makes the query pass a
one-class detector of it.

A present class may then become a referring-style query
(`core.query_vocabulary`: "the largest c", "the leftmost c") with
`referring_probability`, its rule drawn uniformly: `refer`. Its positives
are the one box of c the rule selects, chosen after augmentation (a flip
swaps left and right) from the anchor targets (`query_labels`).

It works on the decoded example dict of Model Garden's detection decoder
(`groundtruth_classes` [N], `groundtruth_boxes` [N, 4], ...), inside
`tf.data`, and returns the query id and the mask of the query's boxes; the
standard head keeps every box.
"""
from typing import Sequence

import tensorflow as tf
from official.vision.ops import box_ops

from univision.core import query_vocabulary


def synthesize(classes: tf.Tensor, num_classes: int,
               absent_probability: float,
               seed: tf.Tensor | None = None,
               query_classes: Sequence[int] = ()
               ) -> tuple[tf.Tensor, tf.Tensor]:
  """Picks a query class for one example.

  Args:
    classes: [N] int ground-truth classes, 1..num_classes-1 (0 is the
      background and never a query).
    num_classes: Model Garden's `num_classes` (background included).
    absent_probability: Chance of querying a class absent from the image.
    seed: A [2] int stateless seed; None draws from the global generator.
    query_classes: The classes queries are drawn from; empty: all.

  Returns:
    query: int32 scalar, the query class (1..num_classes-1).
    positives: [N] bool, True for the boxes of the query class.

  Raises:
    ValueError: naming a query class outside 1..num_classes-1.
  """
  bad = [c for c in query_classes if not 0 < c < num_classes]
  if bad:
    raise ValueError(f'task.query.train_classes: {bad} not in 1..'
                     f'{num_classes - 1}.')
  classes = tf.cast(classes, tf.int32)
  ids = tf.range(1, num_classes, dtype=tf.int32)
  allowed = tf.constant([not query_classes or i in query_classes
                         for i in range(1, num_classes)])
  present = tf.reduce_any(tf.equal(ids[:, None], classes[None, :]), axis=1)
  if seed is None:
    seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
  seeds = tf.random.experimental.stateless_split(seed, 2)
  want_absent = tf.random.stateless_uniform([], seeds[0]) < absent_probability
  absent, present = ~present & allowed, present & allowed
  any_present = tf.reduce_any(present)
  pick_absent = (want_absent & tf.reduce_any(absent)) | ~any_present
  pool = tf.where(pick_absent, absent, present)
  # Uniform over the pool: the argmax of random scores inside it.
  scores = tf.random.stateless_uniform([num_classes - 1], seeds[1])
  query = ids[tf.argmax(tf.where(pool, scores, -1.0))]
  return query, tf.equal(classes, query)


def refer(query: tf.Tensor, positives: tf.Tensor,
          vocabulary: query_vocabulary.QueryVocabulary,
          referring_probability: float,
          seed: tf.Tensor | None = None) -> tf.Tensor:
  """Turns a present class query into a referring one, by chance.

  Args:
    query: int32 scalar class query from `synthesize`.
    positives: [N] bool, its boxes (none: the class is absent, and the
      query stays a class query).
    vocabulary: The query ids, with the referring rules.
    referring_probability: Chance that a present class query refers to one
      of its boxes by a rule (drawn uniformly).
    seed: A [2] int stateless seed; None draws from the global generator.

  Returns:
    int32 scalar query id.
  """
  if not vocabulary.rules or not referring_probability:
    return query
  if seed is None:
    seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
  seeds = tf.random.experimental.stateless_split(seed, 2)
  wanted = tf.random.stateless_uniform([], seeds[0]) < referring_probability
  rule = tf.random.stateless_uniform([], seeds[1], maxval=len(vocabulary.rules),
                                     dtype=tf.int32)
  k = vocabulary.num_classes
  referring = k + rule * (k - 1) + query - 1
  return tf.where(wanted & tf.reduce_any(positives), referring, query)


def _flat(levels: dict) -> tf.Tensor:
  return tf.concat([tf.reshape(t, [-1]) for t in levels.values()], axis=0)


def query_labels(labels: dict, query: tf.Tensor,
                 vocabulary: query_vocabulary.QueryVocabulary | None = None,
                 box_coder_weights: Sequence[float] | None = None) -> dict:
  """Query-pass targets from Model Garden's RetinaNet training labels.

  Anchors matched to a box of the query's class (for a referring query: to
  the box its rule selects) become 1 (positives of the head's column of
  that class); every other anchor is background (-1, as Model Garden
  encodes it); ignored anchors keep weight 0 through the shared
  `cls_weights`. Box targets are shared; box weights keep the query's
  positives only. A referring query's box is found by decoding the box
  targets of the class's anchors (`box_coder_weights`, the parser's):
  they are the augmented image's boxes.

  Args:
    labels: One example's labels from `retinanet_input.Parser` (levels in
      anchor order, as the anchor labeler wrote them).
    query: int scalar query id.
    vocabulary: The query ids; None: class queries only.
    box_coder_weights: The parser's box coder weights.

  Returns:
    `query`, `query_cls_targets` ({level: [H, W, A]}) and
    `query_box_weights` ([num anchors]).
  """
  query = tf.cast(query, tf.int32)
  cls, rule = query, tf.constant(-1)
  if vocabulary is not None:
    cls, rule = vocabulary.query_class(query), vocabulary.query_rule(query)
  class_targets = _flat(labels['cls_targets'])
  flat = tf.equal(class_targets, tf.cast(cls, class_targets.dtype))
  if vocabulary is not None and vocabulary.rules:
    boxes = box_ops.decode_boxes(
        tf.reshape(_flat(labels['box_targets']), [-1, 4]),
        tf.reshape(_flat(labels['anchor_boxes']), [-1, 4]),
        weights=box_coder_weights)
    flat = query_vocabulary.selected_boxes(boxes, flat, rule,
                                           vocabulary.rules)
  cls_targets, start = {}, 0
  for level, targets in labels['cls_targets'].items():
    size = tf.size(targets)
    matched = tf.reshape(flat[start:start + size], tf.shape(targets))
    cls_targets[level] = tf.where(matched, tf.ones_like(targets),
                                  -tf.ones_like(targets))
    start += size
  return {'query': query, 'query_cls_targets': cls_targets,
          'query_box_weights': labels['box_weights'] * tf.cast(
              flat, labels['box_weights'].dtype)}
