"""How far one training batch's statistics lie from each batch norm's
moving ones, the model in inference mode (every layer normalised with its
moving statistics, as evaluation does).

  PYTHONPATH=. python bn_check.py CHECKPOINT OVERRIDES

Prints the 12 batch norms with the largest |batch mean - moving mean| /
moving std (maxz; meanz over channels), the extreme ratios of batch to
moving variance, and that channel's values.
"""
import sys
import numpy as np
import tensorflow as tf, tf_keras
from univision import registry_imports
from univision.studies import query_detection as qd
from official.core import task_factory
ckpt, overrides = sys.argv[1:3]
params = qd.run_config('data/composites/crowded_clothing', 'runs/demo', 6000, 0, overrides, 2)
task = task_factory.get_task(params.task)
model = task.build_model()
tf.train.Checkpoint(**model.checkpoint_items).read(ckpt).expect_partial()
BN = tf_keras.layers.BatchNormalization
orig = BN.call
rec = []
def call(self, x, training=None, **k):
  m, v = tf.nn.moments(tf.cast(x, tf.float32), axes=list(range(x.shape.rank - 1)))
  z = (m - self.moving_mean) / tf.sqrt(self.moving_variance + 1e-3)
  r = v / (self.moving_variance + 1e-3)
  i = int(tf.argmax(tf.abs(z)))
  rec.append((self.moving_mean.name[:70], float(tf.reduce_max(tf.abs(z))), float(tf.reduce_mean(tf.abs(z))), float(tf.reduce_max(r)), float(tf.reduce_min(r)), i, float(self.moving_mean[i]), float(self.moving_variance[i]), float(m[i]), float(v[i]), len(rec)))
  return orig(self, x, training=False, **k)
BN.call = call
ds = iter(task.build_inputs(params.task.train_data))
images, _ = next(ds)
model(images, training=False)
rec.sort(key=lambda t: -t[1])
for t in rec[:12]: print('%-70s maxz %.2f meanz %.2f maxvr %.2f minvr %.2f ch %d mm %.3g mv %.3g bm %.3g bv %.3g order %d' % t)
print('layers', len(rec))
