"""Probe: the study's shirt specialist (class 7), changing one thing.

Fine-tunes the seed's standard-only detector of the study for 2000 steps at
a quarter of the learning rate (as `query_detection.specialist` does) into
`probes_out/<name>/seed<seed>`, and appends its present-class AP of class 7
on test to `probes_out/results.txt`.

Usage (from a checkout root with `data/` and the study's run folders):
  PYTHONPATH=. python specialist_probe.py NAME MODE [OVERRIDES] \
      [RATE_DIVISOR] [SEED] [detector_init]
MODE: `modulation` (only the modulations and query embedding train),
`frozen_bn` (the same, every batch norm in inference mode), or
`parts:head`, `parts:backbone_decoder` (every weight of those parts).
`detector_init` loads only the detector's weights from the checkpoint (its
zero modulations have other shapes at sites placed elsewhere).
"""
import os
import sys
import time

import tensorflow as tf, tf_keras

from univision import registry_imports  # pylint: disable=unused-import
from univision.core import training
from univision.studies import query_detection as qd
from univision.tasks import query_retinanet as qt

PARTS = {'head': lambda m: m.head.trainable_variables,
         'backbone_decoder': lambda m: (m.backbone.trainable_variables +
                                        m.decoder.trainable_variables)}


def _freeze_batch_norm():
  build = qt.QueryRetinaNetTask.build_model

  def build_frozen(self):
    model = build(self)
    for layer in model._flatten_layers(include_self=False, recursive=True):  # pylint: disable=protected-access
      if isinstance(layer, tf_keras.layers.BatchNormalization):
        layer.trainable = False  # Keras 2: inference mode.
    return model
  qt.QueryRetinaNetTask.build_model = build_frozen


def _detector_init():
  def initialize(self, model):
    tf.train.Checkpoint(**model.detector.checkpoint_items).read(
        self.task_config.init_checkpoint).expect_partial(
        ).assert_existing_objects_matched()
  qt.QueryRetinaNetTask.initialize = initialize


def main(name, mode, extra='', rate_divisor='4', seed='0', *flags):
  seed, rate_divisor = int(seed), float(rate_divisor)
  if 'detector_init' in flags:
    _detector_init()
  overrides = qd.SPECIALIST.format(cls=7) + ',task.init_checkpoint_modules=all'
  if mode in ('modulation', 'frozen_bn'):
    overrides += ',task.query.train_only_modulation=true'
    if mode == 'frozen_bn':
      _freeze_batch_norm()
  else:
    trained = PARTS[mode.split(':')[1]]
    qt.QueryRetinaNetTask._trained_variables = lambda self, m: trained(m)  # pylint: disable=protected-access
  task = 'data/composites/crowded_clothing'
  init = dict(qd._checkpoints(os.path.join(  # pylint: disable=protected-access
      'results/query_detection/runs/standard_only', f'seed{seed}')))[6000]
  rate = qd.run_config(task, init, 6000, seed).trainer.optimizer_config \
      .learning_rate.cosine.initial_learning_rate
  overrides += f',{qd._LEARNING_RATE}={rate / rate_divisor}'  # pylint: disable=protected-access
  if extra:
    overrides += ',' + extra
  params = qd.run_config(task, init, 2000, seed, overrides, 6)
  model_dir = f'probes_out/{name}/seed{seed}'
  qd._reset(seed)  # pylint: disable=protected-access
  start = time.time()
  training.run(params, model_dir, mode='train')
  seconds = time.time() - start
  last = dict(qd._checkpoints(model_dir))[2000]  # pylint: disable=protected-access
  ap = qd.evaluate_test(params, task, last, os.path.join(
      model_dir, 'query_eval'))['query_pass']['AP_present/7']
  with open('probes_out/results.txt', 'a') as f:
    f.write(f'{name} seed{seed} {mode} rate/{rate_divisor} [{extra}] '
            f'AP_present/7={ap:.4f} train_s={seconds:.0f}\n')


if __name__ == '__main__':
  main(*sys.argv[1:])
