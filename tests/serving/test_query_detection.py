"""Query detector SavedModel: (image, query id or vector, or none) -> detections."""
import numpy as np
import pytest
import tensorflow as tf
from official.core import exp_factory
from official.core import task_factory

from univision import registry_imports  # pylint: disable=unused-import
from univision.serving import query_detection


def test_saved_model_serves_query_ids_and_vectors(tmp_path):
  params = exp_factory.get_exp_config('mnv4_query_ssdlite_composites')
  # Modulated inside the blocks (the placement that hands the blocks a
  # function) from level 3 on.
  params.override({'task': {
      'model': {'input_size': [64, 64, 3],
                'detection_generator': {'pre_nms_score_threshold': 0.0}},
      'query': {'backbone_placement': 'pre_activation',
                'backbone_levels': [3, 4, 5]}}})
  model = task_factory.get_task(params.task).build_model()
  model(tf.zeros([1, 64, 64, 3]), query_ids=tf.constant([1]),
        training=False)
  rng = np.random.default_rng(0)
  model.modulation.set_weights([0.3 * rng.normal(size=w.shape)
                                for w in model.modulation.get_weights()])
  checkpoint = tf.train.Checkpoint(**model.checkpoint_items).save(
      str(tmp_path / 'ckpt' / 'ckpt'))
  path = query_detection.export(params, checkpoint, str(tmp_path / 'sm'),
                                batch_size=1)
  served = tf.saved_model.load(path)
  image = tf.constant(rng.integers(0, 255, (1, 64, 64, 3)), tf.uint8)
  by_id = {q: served.signatures['serving_default'](
      images=image, query_ids=tf.constant([q], tf.int32)) for q in (1, 3)}
  assert not np.allclose(by_id[1]['detection_scores'],
                         by_id[3]['detection_scores'])
  np.testing.assert_allclose(by_id[1]['standard_detection_scores'],
                             by_id[3]['standard_detection_scores'])
  # Detections of the queried class; the standard signature serves the
  # standard pass; a vector query, the modulated pass's every class.
  for q in (1, 3):
    n = int(by_id[q]['num_detections'][0])
    assert n > 0
    np.testing.assert_array_equal(by_id[q]['detection_classes'][0][:n], q)
  standard = served.signatures['serving_standard'](images=image)
  np.testing.assert_allclose(standard['detection_scores'],
                             by_id[1]['standard_detection_scores'])
  vector = model.query_embedding(tf.constant([3])).numpy()
  by_vector = served.signatures['serving_query_vector'](
      images=image, query_vectors=tf.constant(vector))
  keras_vector = model(tf.zeros([1, 64, 64, 3]), query_vectors=vector,
                       training=False)
  assert by_vector['detection_scores'].shape == (1, 100)
  assert set(np.unique(keras_vector['query_detection_classes'])) != {3}
  # An id that is no class is an error, not an empty result.
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'query ids must be 1\.\.4'):
    served.signatures['serving_default'](
        images=image, query_ids=tf.constant([0], tf.int32))
  # The same top score as the Keras model on the same normalization (with
  # a score threshold of 0 the tail of ~0.01 scores is ordered by
  # rounding, and Keras clips no boxes without an image shape).
  normalized = (image.numpy().astype(np.float32) - np.array(
      [0.485, 0.456, 0.406]) * 255) / (np.array([0.229, 0.224, 0.225]) * 255)
  keras = model(tf.constant(normalized, tf.float32),
                query_ids=tf.constant([3]), training=False)
  np.testing.assert_allclose(by_id[3]['detection_scores'][:, 0],
                             keras['query_detection_scores'][:, 0],
                             atol=1e-5)
