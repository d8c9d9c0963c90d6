"""Query-modulated detection examples synthesized from ordinary detection data.

Fornoni et al., "Bridging the Gap Between Object Detection and User Intent via
Query-Modulation" (arXiv 2106.10258): a query names what the user wants found,
and the training queries are synthesized from standard detection annotations.
Per example, `synthesize` picks the query class:

- with probability `absent_probability` (and if some class is absent), a
  class NOT in the image: the query-modulated head must find nothing;
- otherwise one of the classes present, uniformly over distinct classes:
  the positives are that class's boxes only.

It works on the decoded example dict of Model Garden's detection decoder
(`groundtruth_classes` [N], `groundtruth_boxes` [N, 4], ...), inside
`tf.data`, and returns the query id and the mask of the query's boxes; the
standard head keeps every box.
"""
import tensorflow as tf, tf_keras


def synthesize(classes: tf.Tensor, num_classes: int,
               absent_probability: float,
               seed: tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor]:
  """Picks a query class for one example.

  Args:
    classes: [N] int ground-truth classes, 1..num_classes-1 (0 is the
      background and never a query).
    num_classes: Model Garden's `num_classes` (background included).
    absent_probability: Chance of querying a class absent from the image.
    seed: A [2] int stateless seed; None draws from the global generator.

  Returns:
    query: int32 scalar, the query class (1..num_classes-1).
    positives: [N] bool, True for the boxes of the query class.
  """
  classes = tf.cast(classes, tf.int32)
  ids = tf.range(1, num_classes, dtype=tf.int32)
  present = tf.reduce_any(tf.equal(ids[:, None], classes[None, :]), axis=1)
  if seed is None:
    seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
  seeds = tf.random.experimental.stateless_split(seed, 2)
  want_absent = tf.random.stateless_uniform([], seeds[0]) < absent_probability
  any_absent = tf.reduce_any(~present)
  any_present = tf.reduce_any(present)
  pick_absent = (want_absent & any_absent) | ~any_present
  pool = tf.where(pick_absent, ~present, present)
  # Uniform over the pool: the argmax of random scores inside it.
  scores = tf.random.stateless_uniform([num_classes - 1], seeds[1])
  query = ids[tf.argmax(tf.where(pool, scores, -1.0))]
  return query, tf.equal(classes, query)


def query_labels(labels: dict, query: tf.Tensor) -> dict:
  """Query-pass targets from Model Garden's RetinaNet training labels.

  Anchors matched to a box of the query class become 1 (positives of the
  head's class-q logit); every other anchor is background (-1, as Model
  Garden encodes it); ignored anchors keep weight 0 through the shared
  `cls_weights`. Box targets are shared; box weights keep the query's
  positives only.

  Args:
    labels: One example's labels from `retinanet_input.Parser` (levels in
      anchor order, as the anchor labeler wrote them).
    query: int scalar query class.

  Returns:
    `query`, `query_cls_targets` ({level: [H, W, A]}) and
    `query_box_weights` ([num anchors]).
  """
  matched = {level: tf.equal(targets, tf.cast(query, targets.dtype))
             for level, targets in labels['cls_targets'].items()}
  cls_targets = {level: tf.where(m, tf.ones_like(t), -tf.ones_like(t))
                 for (level, m), t in zip(matched.items(),
                                          labels['cls_targets'].values())}
  flat = tf.concat([tf.reshape(m, [-1]) for m in matched.values()], axis=0)
  return {'query': tf.cast(query, tf.int32),
          'query_cls_targets': cls_targets,
          'query_box_weights': labels['box_weights'] * tf.cast(
              flat, labels['box_weights'].dtype)}
