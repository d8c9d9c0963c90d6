"""Query ids: class queries and referring-style queries built from boxes.

A query-modulated detector (arXiv 2106.10258) is steered by what the user
asks for. Besides a class ("a shirt"), a user may ask for one object among
several of a class, as referring-expression systems are asked ("the largest
shirt", "the leftmost shirt"). Such queries are synthesized from boxes: a
rule picks one box of the class.

Query ids, for a detector of `num_classes` classes (K, background 0):

- 1..K-1: class c, every box of c;
- K + r * (K - 1) + (c - 1): rule r (an index of `rules`) applied to the
  boxes of class c, the one box it selects.

Id 0 (the background) is no query. A query's class is the head column the
query pass reads. Rules, over [ymin, xmin, ymax, xmax] boxes:

- `largest`: the box of largest area;
- `leftmost`: the box whose centre lies furthest left.
"""
import dataclasses
from typing import Sequence

import numpy as np
import tensorflow as tf

RULES = ('largest', 'leftmost')


def rule_keys(boxes, rule: str):
  """The value each rule maximises, per box ([N, 4] numpy or tensor)."""
  ymin, xmin, ymax, xmax = (boxes[..., i] for i in range(4))
  if rule == 'largest':
    return (ymax - ymin) * (xmax - xmin)
  if rule == 'leftmost':
    return -(xmin + xmax) / 2
  raise ValueError(f'Unknown referring rule {rule!r}; known: {RULES}.')


def select(boxes: np.ndarray, rule: str) -> int:
  """Index of the box `rule` selects among [N >= 1, 4] boxes."""
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  if not len(boxes):
    raise ValueError(f'Rule {rule!r} needs at least one box.')
  return int(np.argmax(rule_keys(boxes, rule)))


@dataclasses.dataclass(frozen=True)
class QueryVocabulary:
  """The query ids of a detector with `num_classes` classes and `rules`."""
  num_classes: int  # Background included.
  rules: tuple[str, ...] = ()

  def __post_init__(self):
    if self.num_classes < 2:
      raise ValueError(f'num_classes {self.num_classes}: a query needs at '
                       'least one class besides the background.')
    unknown = [r for r in self.rules if r not in RULES]
    if unknown or len(set(self.rules)) != len(self.rules):
      raise ValueError(f'task.query.referring_rules: {list(self.rules)}; '
                       f'each must be one of {RULES}, at most once.')

  @classmethod
  def of_task(cls, task_config) -> 'QueryVocabulary':
    """The vocabulary of a query task config (`model.num_classes`,
    `query.referring_rules`)."""
    return cls(task_config.model.num_classes,
               tuple(task_config.query.referring_rules))

  def class_table(self) -> list[int]:
    """Head class (column) of every id 0..size-1 (0 for the background)."""
    return [0, *(self.describe(i)[0] for i in range(1, self.size))]

  @property
  def size(self) -> int:
    """Number of ids, the background's 0 included."""
    return self.num_classes + len(self.rules) * (self.num_classes - 1)

  def query_id(self, cls: int, rule: str | None = None) -> int:
    """The id of class `cls` (1..K-1), with `rule` or all its boxes."""
    if not 1 <= cls < self.num_classes:
      raise ValueError(f'Class {cls} is not a class id 1..'
                       f'{self.num_classes - 1}.')
    if rule is None:
      return cls
    if rule not in self.rules:
      raise ValueError(f'Rule {rule!r} is not among this vocabulary\'s '
                       f'rules {list(self.rules)}.')
    return (self.num_classes + self.rules.index(rule) *
            (self.num_classes - 1) + cls - 1)

  def describe(self, query_id: int) -> tuple[int, str | None]:
    """(class, rule or None) of a query id."""
    if not 1 <= query_id < self.size:
      raise ValueError(f'Query id {query_id} is not in 1..{self.size - 1}.')
    if query_id < self.num_classes:
      return query_id, None
    rule, cls = divmod(query_id - self.num_classes, self.num_classes - 1)
    return cls + 1, self.rules[rule]

  def name(self, query_id: int, class_names: dict[int, str]) -> str:
    """E.g. 'shirt' or 'the largest shirt'."""
    cls, rule = self.describe(query_id)
    label = class_names.get(cls, str(cls))
    return label if rule is None else f'the {rule} {label}'

  def query_class(self, query_ids: tf.Tensor) -> tf.Tensor:
    """The class (head column) of each id, int32."""
    ids = tf.cast(query_ids, tf.int32)
    k = self.num_classes
    return tf.where(ids < k, ids, tf.math.floormod(ids - k, k - 1) + 1)

  def query_rule(self, query_ids: tf.Tensor) -> tf.Tensor:
    """The rule index of each id (an index of `rules`), -1 for a class."""
    ids = tf.cast(query_ids, tf.int32)
    k = self.num_classes
    return tf.where(ids < k, -1, tf.math.floordiv(ids - k, k - 1))


def selected_boxes(boxes: tf.Tensor, candidates: tf.Tensor, rule: tf.Tensor,
                   rules: Sequence[str],
                   tolerance: float = 1e-3) -> tf.Tensor:
  """Which candidate boxes rule `rule` selects; all candidates for -1.

  Candidates may repeat one box several times, up to float error (e.g.
  anchor targets decoded back into boxes: every anchor matched to a box
  decodes to it), so every candidate within `tolerance` * (1 + |best|) of
  the best key is selected.

  Args:
    boxes: [N, 4] boxes.
    candidates: [N] bool, the boxes of the query's class.
    rule: int scalar, an index of `rules`, or -1 (no rule).
    rules: The vocabulary's rules.
    tolerance: Relative tolerance on the rule's key.

  Returns:
    [N] bool.
  """
  if not rules:
    return candidates
  keys = tf.stack([tf.cast(rule_keys(boxes, r), tf.float32) for r in rules])
  key = tf.gather(keys, tf.maximum(rule, 0))
  lowest = tf.constant(-np.inf, tf.float32)
  best = tf.reduce_max(tf.where(candidates, key, lowest))
  chosen = candidates & (key >= best - tolerance * (1.0 + tf.abs(best)))
  return tf.where(rule >= 0, chosen, candidates)
