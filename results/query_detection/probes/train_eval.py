"""Evaluate a run's last checkpoint on the first 200 training images
instead of test (is a low test mAP overfitting?).

  PYTHONPATH=. python train_eval.py RUN_DIR OVERRIDES OUT
"""
import json
import os
import sys
import tensorflow as tf
from univision import registry_imports
from univision.studies import query_detection as qd
run_dir, overrides, out = sys.argv[1:4]
task_folder = 'data/composites/crowded_clothing'
subset = os.path.join(out, 'train200')
os.makedirs(subset, exist_ok=True)
with open(os.path.join(task_folder, 'label_map.json')) as f, open(
    os.path.join(subset, 'label_map.json'), 'w') as g:
  g.write(f.read())
with tf.io.TFRecordWriter(os.path.join(subset, 'test-00000-of-00001.tfrecord')) as w:
  for r in tf.data.TFRecordDataset(os.path.join(task_folder, 'train-00000-of-00002.tfrecord')).take(200):
    w.write(r.numpy())
params = qd.run_config(task_folder, 'runs/demo', 6000, 0, overrides, 2)
ckpt = dict(qd._checkpoints(run_dir))[6000]
res = qd.evaluate_test(params, subset, ckpt, os.path.join(out, 'query_eval'))
print('RESULT', run_dir, 'train200 mAP', round(res['standard']['mAP'], 4), 'filtered', round(res['standard_filtered']['query_AP_present'], 4), 'query', round(res['query_pass']['query_AP_present'], 4))
