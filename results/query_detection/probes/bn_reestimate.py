"""Re-estimate BN moving statistics on standard-pass features only, then
evaluate the standard detector (and the query pass) on test.

  PYTHONPATH=. python bn_reestimate.py RUN_DIR OVERRIDES OUT [MOMENTUM BATCHES]

(default momentum 0.9 over 150 training batches)."""
import os, sys
import tensorflow as tf, tf_keras
from univision import registry_imports
from univision.studies import query_detection as qd
from official.core import task_factory
run_dir, overrides, out = sys.argv[1], sys.argv[2], sys.argv[3]
momentum = float(sys.argv[4]) if len(sys.argv) > 4 else 0.9
batches = int(sys.argv[5]) if len(sys.argv) > 5 else 150
task_folder = 'data/composites/crowded_clothing'
params = qd.run_config(task_folder, 'runs/demo', 6000, 0, overrides, 2)
task = task_factory.get_task(params.task)
model = task.build_model()
ckpt = dict(qd._checkpoints(run_dir))[6000]
tf.train.Checkpoint(**model.checkpoint_items).read(ckpt).expect_partial()
bns = [l for l in model._flatten_layers(include_self=False, recursive=True)
       if isinstance(l, tf_keras.layers.BatchNormalization)]
for l in bns:
  l.momentum = momentum
ds = iter(task.build_inputs(params.task.train_data))
step = tf.function(lambda x: model(x, training=True))
for i in range(batches):
  images, _ = next(ds)
  step(images)  # No query: the standard pass alone.
path = tf.train.Checkpoint(**model.checkpoint_items).write(os.path.join(out, 'ckpt-6000'))
res = qd.evaluate_test(params, task_folder, path, os.path.join(out, 'query_eval'))
print('RESULT standard mAP', res['standard']['mAP'], 'filtered', res['standard_filtered']['query_AP_present'], 'query', res['query_pass']['query_AP_present'])
