"""Query-modulated RetinaNet: the query steers only the query head."""
import numpy as np
import pytest
import tensorflow as tf
from official.core import exp_factory
from official.core import task_factory

from univision import registry_imports  # pylint: disable=unused-import
from univision.modeling.detectors import query_retinanet

SIZE = 64


@pytest.fixture(scope='module')
def model():
  params = exp_factory.get_exp_config('mnv4_ssdlite_composites')
  params.override({'task': {'model': {'input_size': [SIZE, SIZE, 3]}}})
  detector = task_factory.get_task(params.task).build_model()
  query_model = query_retinanet.build(detector, num_classes=5,
                                      embedding_dim=8)
  images = tf.random.stateless_normal([2, SIZE, SIZE, 3], [0, 1])
  query_model(images, query_ids=tf.constant([1, 2]), training=False)
  return query_model, images


def _randomize_modulation(model, seed=3):
  rng = np.random.default_rng(seed)
  weights = model.modulation.get_weights()
  model.modulation.set_weights([0.3 * rng.normal(size=w.shape) for w in weights])
  return weights


def test_zero_modulation_equals_the_unmodulated_query_head(model):
  query_model, images = model
  out = query_model(images, query_ids=tf.constant([1, 3]), training=False)
  features = query_model.decoder(query_model.backbone(images, training=False),
                                 training=False)
  scores, boxes, _ = query_model.query_head(features, training=False)
  for level in scores:
    np.testing.assert_allclose(out['query_cls_outputs'][level], scores[level],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out['query_box_outputs'][level], boxes[level],
                               rtol=1e-5, atol=1e-6)
  # With zero FiLM the query does not matter yet.
  other = query_model(images, query_ids=tf.constant([4, 2]), training=False)
  np.testing.assert_allclose(other['query_cls_outputs']['3'],
                             out['query_cls_outputs']['3'], atol=1e-6)


def test_query_changes_query_outputs_and_not_standard_ones(model):
  query_model, images = model
  saved = _randomize_modulation(query_model)
  try:
    a = query_model(images, query_ids=tf.constant([1, 1]), training=False)
    b = query_model(images, query_ids=tf.constant([3, 3]), training=False)
  finally:
    query_model.modulation.set_weights(saved)
  assert not np.allclose(a['query_cls_outputs']['3'],
                         b['query_cls_outputs']['3'])
  np.testing.assert_array_equal(a['cls_outputs']['3'], b['cls_outputs']['3'])
  for prefix in ('', 'query_'):
    assert a[prefix + 'detection_boxes'].shape[:2] == (2, 100)
  # The query head has one foreground class; the standard head five.
  assert a['query_cls_outputs']['3'].shape[-1] * 5 == (
      a['cls_outputs']['3'].shape[-1] * 2)


def test_query_vectors_instead_of_ids(model):
  query_model, images = model
  saved = _randomize_modulation(query_model)
  try:
    by_id = query_model(images, query_ids=tf.constant([2, 4]), training=True)
    vectors = query_model.query_embedding(tf.constant([2, 4]))
    by_vector = query_model(images, query_vectors=vectors, training=True)
  finally:
    query_model.modulation.set_weights(saved)
  np.testing.assert_allclose(by_id['query_cls_outputs']['4'],
                             by_vector['query_cls_outputs']['4'], atol=1e-5)
  with pytest.raises(ValueError, match='not both'):
    query_model(images, query_ids=tf.constant([2, 4]), query_vectors=vectors,
                training=True)
  standard = query_model(images, training=False)
  assert 'query_cls_outputs' not in standard
  np.testing.assert_allclose(standard['detection_scores'],
                             query_model.detector(images, training=False)[
                                 'detection_scores'], atol=1e-6)


def test_checkpoint_items_cover_every_variable(model):
  query_model, _ = model
  covered = {id(v) for item in query_model.checkpoint_items.values()
             for v in item.weights}
  assert covered == {id(v) for v in query_model.weights}


@pytest.mark.parametrize('modulation', ['film', 'concat'])
def test_both_modulations_start_as_identity_and_then_follow_the_query(
    modulation):
  params = exp_factory.get_exp_config('mnv4_ssdlite_composites')
  params.override({'task': {'model': {'input_size': [SIZE, SIZE, 3]}}})
  detector = task_factory.get_task(params.task).build_model()
  query_model = query_retinanet.build(detector, num_classes=5,
                                      embedding_dim=8, modulation=modulation)
  images = tf.random.stateless_normal([1, SIZE, SIZE, 3], [0, 2])
  outputs = lambda q: query_model(images, query_ids=tf.constant([q]),
                                  training=False)['query_cls_outputs']['4']
  np.testing.assert_allclose(outputs(1), outputs(3), atol=1e-6)
  _randomize_modulation(query_model)
  assert not np.allclose(outputs(1), outputs(3))


def test_unknown_modulation_is_named():
  params = exp_factory.get_exp_config('mnv4_ssdlite_composites')
  params.override({'task': {'model': {'input_size': [SIZE, SIZE, 3]}}})
  detector = task_factory.get_task(params.task).build_model()
  with pytest.raises(ValueError, match="task.query.modulation: 'add'"):
    query_retinanet.build(detector, 5, modulation='add')
