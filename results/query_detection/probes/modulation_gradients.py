import os, sys
import numpy as np, tensorflow as tf
from univision import registry_imports
from univision.studies import query_detection as qd
from official.core import task_factory
placement = sys.argv[1]
task_folder = 'data/composites/crowded_clothing'
init = 'results/query_detection/runs/standard_only/seed0/ckpt-6000'
over = qd.SPECIALIST.format(cls=7) + f',task.query.train_only_modulation=true,task.query.backbone_placement={placement},task.query.backbone_levels=[1,2,3,4,5]'
params = qd.run_config(task_folder, init, 2000, 0, over, 6)
task = task_factory.get_task(params.task)
model = task.build_model()
tf.train.Checkpoint(**model.detector.checkpoint_items).read(init).expect_partial()
ds = iter(task.build_inputs(params.task.train_data))
acc = {}
for _ in range(4):
  images, labels = next(ds)
  with tf.GradientTape() as tape:
    out = model(images, query_ids=labels['query'], training=True, standard_pass=False)
    c, b = task.query_losses(out, labels)
    loss = c + params.task.losses.box_loss_weight * b
  vs = model.modulation.trainable_variables
  gs = tape.gradient(loss, vs)
  for v, g in zip(vs, gs):
    acc.setdefault(v.name, []).append(0.0 if g is None else float(tf.sqrt(tf.reduce_mean(g * g))))
  print('loss', float(loss))
for n, r in acc.items():
  if 'bias' in n: print(n.split('/')[1], 'grad rms per batch', ' '.join('%.2e' % x for x in r))
