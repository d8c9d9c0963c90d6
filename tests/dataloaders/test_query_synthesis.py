"""Query synthesis: the positives are exactly the queried class's boxes."""
import numpy as np
import pytest
import tensorflow as tf

from univision.core import query_vocabulary
from univision.dataloaders import query_synthesis


def _draws(classes, num_classes, absent_probability, n=200):
  out = []
  for i in range(n):
    query, positives = query_synthesis.synthesize(
        tf.constant(classes), num_classes, absent_probability,
        seed=tf.constant([7, i]))
    out.append((int(query), positives.numpy()))
  return out


def test_no_positive_of_another_class_leaks_in():
  classes = [1, 3, 3, 2, 1]
  for query, positives in _draws(classes, num_classes=6,
                                 absent_probability=0.3):
    assert 1 <= query <= 5
    np.testing.assert_array_equal(positives, np.equal(classes, query))


def test_present_and_absent_queries_in_the_asked_proportion():
  draws = _draws([1, 3, 3], num_classes=6, absent_probability=0.25, n=400)
  absent = [q for q, p in draws if not p.any()]
  assert set(absent) <= {2, 4, 5}
  assert 0.17 < len(absent) / len(draws) < 0.33
  present = [q for q, p in draws if p.any()]
  assert set(present) == {1, 3}
  # Uniform over distinct present classes, not over boxes.
  assert 0.4 < present.count(1) / len(present) < 0.6


def test_edge_cases_all_present_or_none_present():
  for query, positives in _draws([1, 2, 3], 4, absent_probability=1.0, n=20):
    assert positives.any()  # Nothing is absent: a present class is asked.
  for query, positives in _draws([], 4, absent_probability=0.0, n=20):
    assert 1 <= query <= 3 and positives.size == 0


def test_query_classes_narrow_both_pools():
  def draws(classes, query_classes, n=100):
    return [(int(q), p.numpy()) for q, p in (
        query_synthesis.synthesize(tf.constant(classes), 6, 0.5,
                                   seed=tf.constant([3, i]),
                                   query_classes=query_classes)
        for i in range(n))]
  narrowed = draws([1, 3], (3, 4))
  assert {q for q, _ in narrowed} == {3, 4}
  assert {q for q, p in narrowed if p.any()} == {3}
  # One class: always asked, present or absent, whatever the chance says.
  assert {(q, p.any()) for q, p in draws([1, 3], (3,))} == {(3, True)}
  assert {(q, p.any()) for q, p in draws([1, 2], (3,))} == {(3, False)}
  with pytest.raises(ValueError, match=r'train_classes: \[6\] not in 1..5'):
    query_synthesis.synthesize(tf.constant([1]), 6, 0.5, query_classes=(6,))


def test_seeded_draws_repeat_and_work_in_a_dataset():
  first, again = _draws([1, 2], 5, 0.5, n=10), _draws([1, 2], 5, 0.5, n=10)
  assert [q for q, _ in first] == [q for q, _ in again]
  assert len({q for q, _ in first}) > 1  # The seed changes the draw.
  dataset = tf.data.Dataset.from_tensors(tf.constant([2, 2, 4])).repeat(5)
  dataset = dataset.map(lambda c: query_synthesis.synthesize(c, 5, 0.5))
  for query, positives in dataset:
    np.testing.assert_array_equal(positives.numpy(),
                                  np.equal([2, 2, 4], int(query)))


def _parsed(classes, boxes, absent_probability, **kwargs):
  from univision.dataloaders import query_retinanet_input  # pylint: disable=g-import-not-at-top
  parser = query_retinanet_input.Parser(
      num_classes=5, absent_probability=absent_probability,
      output_size=[64, 64], min_level=3, max_level=4, num_scales=1,
      aspect_ratios=[1.0], anchor_size=4.0,
      **{'aug_rand_hflip': False, **kwargs})
  n = len(classes)
  data = {
      'image': tf.zeros([64, 64, 3], tf.uint8),
      'groundtruth_classes': tf.constant(classes, tf.int64),
      'groundtruth_boxes': tf.constant(boxes, tf.float32),
      'groundtruth_is_crowd': tf.zeros([n], tf.bool),
      'groundtruth_area': tf.ones([n], tf.float32),
      'height': tf.constant(64), 'width': tf.constant(64),
      'source_id': tf.constant('1'),
  }
  return parser.parse_fn(is_training=True)(data)


def test_parser_query_targets_are_the_query_class_anchors_only():
  boxes = [[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0.0, 0.5, 0.5, 1.0]]
  classes = [1, 2, 2]
  seen = set()
  for _ in range(24):  # P(a present class never asked) ~ 3e-5.
    _, labels = _parsed(classes, boxes, absent_probability=0.3)
    query = int(labels['query'])
    seen.add(query)
    flat_std, flat_query = [], []
    for level, std in labels['cls_targets'].items():
      q = labels['query_cls_targets'][level].numpy()
      std = std.numpy()
      assert set(np.unique(q)) <= {-1, 1}
      # A query positive is exactly a standard positive of the query class.
      np.testing.assert_array_equal(q == 1, std == query)
      flat_std.append(std.reshape(-1))
      flat_query.append(q.reshape(-1))
    flat_std = np.concatenate(flat_std)
    box_weights = labels['box_weights'].numpy()
    np.testing.assert_array_equal(labels['query_box_weights'].numpy(),
                                  box_weights * (flat_std == query))
    if query in classes:
      assert (np.concatenate(flat_query) == 1).any()
    else:
      assert not labels['query_box_weights'].numpy().any()
  assert {1, 2} <= seen  # Both present classes get asked.


def test_bad_absent_probability_is_named():
  from univision.dataloaders import query_retinanet_input  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match='absent_probability: 1.5'):
    query_retinanet_input.Parser(num_classes=5, absent_probability=1.5,
                                 output_size=[64, 64], min_level=3,
                                 max_level=4, num_scales=1,
                                 aspect_ratios=[1.0], anchor_size=4.0)


def test_refer_turns_present_class_queries_into_referring_ones():
  vocab = query_vocabulary.QueryVocabulary(5, ('largest', 'leftmost'))
  kinds = []
  for i in range(300):
    query = query_synthesis.refer(tf.constant(3), tf.constant([False, True]),
                                  vocab, 0.4, seed=tf.constant([3, i]))
    kinds.append(vocab.describe(int(query)))
  assert {cls for cls, _ in kinds} == {3}
  rules = [rule for _, rule in kinds]
  assert 0.3 < (300 - rules.count(None)) / 300 < 0.5
  assert 0.4 < rules.count('largest') / (300 - rules.count(None)) < 0.6
  # An absent class stays a class query (no box to refer to).
  for i in range(20):
    assert int(query_synthesis.refer(tf.constant(3), tf.constant([False]),
                                     vocab, 1.0,
                                     seed=tf.constant([3, i]))) == 3


def _decoded_boxes(labels):
  from official.vision.ops import box_ops  # pylint: disable=g-import-not-at-top
  flat = lambda levels: np.concatenate(
      [t.numpy().reshape(-1) for t in levels.values()])
  return box_ops.decode_boxes(
      tf.constant(flat(labels['box_targets']).reshape(-1, 4)),
      tf.constant(flat(labels['anchor_boxes']).reshape(-1, 4))).numpy()


@pytest.mark.parametrize('rule', ['largest', 'leftmost'])
def test_referring_targets_are_the_rule_box_after_the_flip(rule):
  # Class 2: a small box at the right, a large one at the left; the flip
  # (random, half the draws) swaps which one is leftmost.
  boxes = [[0.1, 0.1, 0.45, 0.45], [0.55, 0.05, 1.0, 0.55],
           [0.1, 0.7, 0.35, 0.95]]
  classes = [1, 2, 2]
  selected_large = set()
  checked = 0
  for _ in range(48):  # P(one flip side never drawn) ~ 2**-23.
    if checked >= 6 and len(selected_large) == 2:
      break
    _, labels = _parsed(classes, boxes, absent_probability=0.0,
                        referring_rules=(rule,), referring_probability=1.0,
                        aug_rand_hflip=True)
    vocab = query_vocabulary.QueryVocabulary(5, (rule,))
    cls, asked = vocab.describe(int(labels['query']))
    std = np.concatenate([t.numpy().reshape(-1)
                          for t in labels['cls_targets'].values()])
    query = np.concatenate([t.numpy().reshape(-1)
                            for t in labels['query_cls_targets'].values()])
    positives = query == 1
    if cls == 1:  # A single box: the rule selects it.
      assert asked == rule
      np.testing.assert_array_equal(positives, std == 1)
      continue
    decoded = _decoded_boxes(labels)
    of_class = std == 2
    keys = query_vocabulary.rule_keys(decoded, rule)
    best = keys[of_class].max()
    assert positives.any() and not (positives & ~of_class).any()
    np.testing.assert_allclose(keys[positives], best, rtol=1e-3, atol=1e-2)
    # The other box of the class is a negative of the referring query.
    assert (of_class & ~positives).any()
    assert (keys[of_class & ~positives] < best - 1.0).all()
    np.testing.assert_array_equal(
        labels['query_box_weights'].numpy(),
        labels['box_weights'].numpy() * positives)
    checked += 1
    # Leftmost is the large box unflipped, the small one flipped.
    areas = query_vocabulary.rule_keys(decoded, 'largest')
    selected_large.add(bool(areas[positives].min() > areas[of_class].mean()))
  assert checked >= 6
  assert selected_large == ({True} if rule == 'largest' else {True, False})


def test_referring_probability_without_rules_is_refused():
  from univision.dataloaders import query_retinanet_input  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match='referring_probability: 0.5'):
    query_retinanet_input.Parser(num_classes=5, absent_probability=0.1,
                                 referring_probability=0.5,
                                 output_size=[64, 64], min_level=3,
                                 max_level=4, num_scales=1,
                                 aspect_ratios=[1.0], anchor_size=4.0)
