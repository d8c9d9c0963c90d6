"""The query-detection evaluation tool on a small composite task."""
import json
import os

import numpy as np
import tensorflow as tf
from official.core import exp_factory
from official.core import task_factory

from univision import registry_imports  # pylint: disable=unused-import
from univision.evaluation import query_detection_eval
from univision.evaluation import referring_accuracy


def test_evaluation_writes_both_query_aps_and_a_plot(composites, tmp_path,
                                                    monkeypatch):
  params = exp_factory.get_exp_config('mnv4_query_ssdlite_composites')
  params.override({'task': {
      'query': {'referring_rules': ['largest', 'leftmost']},
      # An untrained head scores ~0.01 (its prior): keep its detections.
      'model': {'input_size': [64, 64, 3], 'detection_generator': {
          'pre_nms_score_threshold': 0.001}},
      'validation_data': {'input_path': f'{composites}/val-*',
                          'global_batch_size': 4}}})
  model = task_factory.get_task(params.task).build_model()
  model(tf.zeros([1, 64, 64, 3]), query_ids=tf.ones([1], tf.int32),
        training=False)
  checkpoint = tf.train.Checkpoint(**model.checkpoint_items).save(
      str(tmp_path / 'ckpt' / 'ckpt'))
  assert query_detection_eval.query_classes(params) == {
      1: 't-shirt/top', 2: 'pullover', 3: 'shirt', 4: 'coat'}
  out = str(tmp_path / 'eval')
  cases = []
  accuracies = referring_accuracy.accuracies
  monkeypatch.setattr(referring_accuracy, 'accuracies',
                      lambda c: cases.extend(c) or accuracies(c))
  results = query_detection_eval.evaluate(params, checkpoint, out,
                                          num_plot_images=2)
  # Every image is asked both rules for each class it holds; with zero
  # modulation the query pass's answer is the standard pass's top
  # detection of the class.
  assert results['referring']['cases'] == len(cases) > 0
  assert {c.rule for c in cases} == {'largest', 'leftmost'}
  assert sum(c.rule == 'largest' for c in cases) * 2 == len(cases)
  for case in cases:
    assert len(case.query_boxes) == len(case.standard_boxes)
    if len(case.query_boxes):
      np.testing.assert_allclose(
          case.query_boxes[0],
          case.standard_boxes[np.argmax(case.standard_scores)], atol=1e-3)
  assert any(len(case.query_boxes) for case in cases)
  for key in ('query_pass', 'select_by_rule', 'query_pass/leftmost',
              'select_by_rule/largest'):
    assert 0.0 <= results['referring'][key] <= 1.0
  for name in ('query_pass', 'standard_filtered'):
    for key in ('query_AP', 'query_AP_present', 'AP/1', 'AP_present/4'):
      assert 0.0 <= results[name][key] <= 1.0
  # Zero modulation: the query pass is the standard pass filtered to q.
  assert results['query_pass'] == results['standard_filtered']
  breakdown = results['breakdown']
  assert breakdown['query_pass'] == breakdown['standard_filtered']
  filtered = breakdown['standard_filtered']
  assert filtered['AP'] == results['standard_filtered']['query_AP_present']
  # Removing false positives never lowers AP.
  assert filtered['AP_confusion_free'] >= filtered['AP']
  assert filtered['AP50_confusion_free'] >= filtered['AP50'] >= filtered['AP']
  assert 0.0 <= results['standard']['mAP'] <= 1.0
  assert set(results['standard']) - {'mAP'} <= {f'AP/{c}' for c in range(
      1, 5)}
  with open(os.path.join(out, 'query_ap.json')) as f:
    saved = json.load(f)
  assert saved['query_pass']['query_AP'] == results['query_pass']['query_AP']
  with open(os.path.join(out, 'detections.png'), 'rb') as f:
    assert f.read(4) == b'\x89PNG'
