"""Probe: modulation-only shirt specialist with every BN in inference mode."""
import os, sys, time
import tf_keras
from univision.studies import query_detection as qd
from univision.core import training
from univision import registry_imports
from univision.tasks import query_retinanet as qt
name, extra, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
build = qt.QueryRetinaNetTask.build_model
def build_frozen_bn(self):
  model = build(self)
  n = 0
  for layer in model._flatten_layers(include_self=False, recursive=True):
    if isinstance(layer, tf_keras.layers.BatchNormalization):
      layer.trainable = False
      n += 1
  print('FROZE_BN', n)
  return model
qt.QueryRetinaNetTask.build_model = build_frozen_bn
task = 'data/composites/crowded_clothing'
runs = 'results/query_detection/runs'
init = dict(qd._checkpoints(os.path.join(runs, 'standard_only', f'seed{seed}')))[6000]
rate = qd.run_config(task, init, 6000, seed).trainer.optimizer_config.learning_rate.cosine.initial_learning_rate
over = (qd.SPECIALIST.format(cls=7) + f',task.init_checkpoint_modules=all,{qd._LEARNING_RATE}={rate / 4},task.query.train_only_modulation=true')
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
print('RESULT', name, seed, aps['AP_present/7'])
with open('probes_out/results.txt', 'a') as f:
  f.write(f'{name} seed{seed} modulation-only, every BN frozen (inference mode) [{extra}]: AP_present/7={aps["AP_present/7"]:.4f} train_s={secs:.0f}\n')
