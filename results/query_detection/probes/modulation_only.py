"""Probe: modulation-only shirt specialist with other sites / rates.

Args: name, extra overrides, learning-rate divisor, seed, and optionally
`detector_init`: load only the detector's weights from the checkpoint (its
zero modulations have other shapes at sites placed elsewhere).
"""
import json, os, sys, time
from univision.studies import query_detection as qd
from univision.core import training
from univision import registry_imports
import tensorflow as tf
from univision.tasks import query_retinanet as qt
name, extra, rate_div = sys.argv[1], sys.argv[2], float(sys.argv[3])
seed = int(sys.argv[4]) if len(sys.argv) > 4 else 0
if sys.argv[5:] == ['detector_init']:
  def _init(self, model):
    tf.train.Checkpoint(**model.detector.checkpoint_items).read(
        self.task_config.init_checkpoint).expect_partial(
        ).assert_existing_objects_matched()
  qt.QueryRetinaNetTask.initialize = _init
task = 'data/composites/crowded_clothing'
runs = 'results/query_detection/runs'
init = dict(qd._checkpoints(os.path.join(runs, 'standard_only', f'seed{seed}')))[6000]
rate = qd.run_config(task, init, 6000, seed).trainer.optimizer_config.learning_rate.cosine.initial_learning_rate
over = (qd.SPECIALIST.format(cls=7) + f',task.init_checkpoint_modules=all,{qd._LEARNING_RATE}={rate / rate_div},task.query.train_only_modulation=true')
if extra:
  over += ',' + extra
params = qd.run_config(task, init, 2000, seed, over, 6)
model_dir = f'probes_out/{name}/seed{seed}'
qd._reset(seed)
t = time.time()
training.run(params, model_dir, mode='train')
secs = time.time() - t
last = dict(qd._checkpoints(model_dir))[2000]
aps = qd.evaluate_test(params, task, last, os.path.join(model_dir, 'query_eval'))['query_pass']
print('RESULT', name, seed, 'AP_present/7', aps['AP_present/7'], 'train_s', round(secs))
with open('probes_out/results.txt', 'a') as f:
  f.write(f'{name} seed{seed} rate/{rate_div} [{extra}] AP_present/7={aps["AP_present/7"]:.4f} train_s={secs:.0f}\n')
