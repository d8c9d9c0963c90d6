"""Probe: full-weight shirt specialist fine-tuning only some parts."""
import os, sys, time
from univision.studies import query_detection as qd
from univision.core import training
from univision import registry_imports
from univision.tasks import query_retinanet as qt
parts, seed = sys.argv[1], int(sys.argv[2])
PARTS = {'head': lambda m: m.head.trainable_variables,
         'backbone_decoder': lambda m: m.backbone.trainable_variables + m.decoder.trainable_variables,
         'decoder_head': lambda m: m.decoder.trainable_variables + m.head.trainable_variables}
qt.QueryRetinaNetTask._trained_variables = lambda self, m: PARTS[parts](m)
task = 'data/composites/crowded_clothing'
runs = 'results/query_detection/runs'
init = dict(qd._checkpoints(os.path.join(runs, 'standard_only', f'seed{seed}')))[6000]
rate = qd.run_config(task, init, 6000, seed).trainer.optimizer_config.learning_rate.cosine.initial_learning_rate
over = qd.SPECIALIST.format(cls=7) + f',task.init_checkpoint_modules=all,{qd._LEARNING_RATE}={rate / 4}'
params = qd.run_config(task, init, 2000, seed, over, 6)
model_dir = f'probes_out/parts_{parts}/seed{seed}'
qd._reset(seed)
t = time.time()
training.run(params, model_dir, mode='train')
secs = time.time() - t
last = dict(qd._checkpoints(model_dir))[2000]
aps = qd.evaluate_test(params, task, last, os.path.join(model_dir, 'query_eval'))['query_pass']
print('RESULT', parts, seed, aps['AP_present/7'])
with open('probes_out/results.txt', 'a') as f:
  f.write(f'parts_{parts} seed{seed} rate/4 full-weight specialist, only {parts} trained: AP_present/7={aps["AP_present/7"]:.4f} train_s={secs:.0f}\n')
