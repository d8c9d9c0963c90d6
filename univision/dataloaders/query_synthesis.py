"""Query-modulated detection examples synthesized from ordinary detection data.

Fang et al., "Modulating Object Detectors for User Intent" (arXiv
2106.10258): a query names what the user wants found, and the training
queries are synthesized from standard detection annotations. Per example,
`synthesize` picks the query class:

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
