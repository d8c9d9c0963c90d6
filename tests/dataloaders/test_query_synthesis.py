"""Query synthesis: the positives are exactly the queried class's boxes."""
import numpy as np
import tensorflow as tf

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


def test_seeded_draws_repeat_and_work_in_a_dataset():
  first, again = _draws([1, 2], 5, 0.5, n=10), _draws([1, 2], 5, 0.5, n=10)
  assert [q for q, _ in first] == [q for q, _ in again]
  assert len({q for q, _ in first}) > 1  # The seed changes the draw.
  dataset = tf.data.Dataset.from_tensors(tf.constant([2, 2, 4])).repeat(5)
  dataset = dataset.map(lambda c: query_synthesis.synthesize(c, 5, 0.5))
  for query, positives in dataset:
    np.testing.assert_array_equal(positives.numpy(),
                                  np.equal([2, 2, 4], int(query)))
