"""Evaluate a run's last checkpoint on test with every batch norm in
training mode (normalised with each test batch's own statistics, batches
of 8) instead of its moving statistics.

  PYTHONPATH=. python batchstat_eval.py RUN_DIR OVERRIDES OUT
"""
import sys
import tf_keras
from univision import registry_imports
from univision.studies import query_detection as qd
BN = tf_keras.layers.BatchNormalization
orig = BN.call
BN.call = lambda self, inputs, training=None, **k: orig(self, inputs, training=True, **k)
run_dir, overrides, out = sys.argv[1:4]
params = qd.run_config('data/composites/crowded_clothing', 'runs/demo', 6000, 0, overrides, 2)
ckpt = dict(qd._checkpoints(run_dir))[6000]
res = qd.evaluate_test(params, 'data/composites/crowded_clothing', ckpt, out)
print('RESULT', run_dir, 'batchstats mAP', round(res['standard']['mAP'], 4), 'filtered', round(res['standard_filtered']['query_AP_present'], 4), 'query', round(res['query_pass']['query_AP_present'], 4))
