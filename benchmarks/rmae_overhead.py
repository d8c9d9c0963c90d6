"""R-MAE's compute over MAE: forward MACs, parameters, CPU train-step time.

ViT-B/16 at 224x224, mask ratio 0.75, the released region branch
(`rmae.RegionMaskedAutoencoder` defaults), k in {1, 4, 8, 16}, against the
plain MAE (`mae.MaskedAutoencoder`). MACs are counted on the traced forward
graph with `univision.efficiency.counting.op_macs` (convolutions, matmuls,
einsums; what fvcore counts as "flops" for these layers) for a batch of 2,
like the fact sheet's fvcore numbers (MAE-B: 19.59 G per 2 images). Train
step: forward, MAE (+ region) loss, gradients and an AdamW update, timed as
the median of `--steps` steps after one warm-up, MAE and R-MAE runs
interleaved so that load from other processes hits both alike.

Usage:
  .venv/bin/python benchmarks/rmae_overhead.py --steps=5 --batch=2 \
    --csv=benchmarks/results/rmae_overhead.csv
"""
import argparse
import csv
import os
import statistics
import time

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import tensorflow as tf, tf_keras  # pylint: disable=g-import-not-at-top
from tensorflow.python.framework import convert_to_constants  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import

from univision.efficiency import counting  # pylint: disable=g-import-not-at-top
from univision.modeling import mae  # pylint: disable=g-import-not-at-top
from univision.modeling import mae_ops  # pylint: disable=g-import-not-at-top
from univision.modeling import rmae  # pylint: disable=g-import-not-at-top

SIZE = 224
PATCH = 16


def _inputs(num_regions: int, batch: int):
  images = tf.random.stateless_normal([batch, SIZE, SIZE, 3], seed=[0, 0])
  if not num_regions:
    return images
  regions = tf.cast(tf.random.stateless_uniform(
      [batch, num_regions, SIZE, SIZE], seed=[0, 1]) < 0.5, tf.float32)
  return {'images': images, 'regions': regions}


def _model(num_regions: int) -> tf_keras.Model:
  if not num_regions:
    return mae.MaskedAutoencoder((SIZE, SIZE), 'base')
  return rmae.RegionMaskedAutoencoder((SIZE, SIZE), 'base',
                                      num_regions=num_regions)


def forward_macs(model: tf_keras.Model, inputs) -> int:
  """MACs of the counted ops of one forward pass on `inputs`' shapes."""
  specs = tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype),
                                inputs)
  concrete = tf.function(lambda x: model(x, training=False)
                         ).get_concrete_function(specs)
  frozen = convert_to_constants.convert_variables_to_constants_v2(concrete)
  return sum(counting.op_macs(op) for op in frozen.graph.get_operations())


def _loss(model: tf_keras.Model, inputs) -> tf.Tensor:
  out = model(inputs, training=True)
  images = inputs['images'] if isinstance(inputs, dict) else inputs
  loss = mae_ops.reconstruction_loss(images, out['predictions'], out['mask'],
                                     PATCH, norm_pix_loss=True)
  if isinstance(inputs, dict):
    loss += rmae.region_loss(inputs['regions'], out['region_logits'],
                             out['mask'], PATCH)
  return loss


def train_step_fn(model: tf_keras.Model, inputs):
  optimizer = tf_keras.optimizers.experimental.AdamW(1e-4)

  @tf.function
  def step():
    with tf.GradientTape() as tape:
      loss = _loss(model, inputs)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss

  return step


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--regions', default='1,4,8,16')
  parser.add_argument('--steps', type=int, default=5)
  parser.add_argument('--batch', type=int, default=2)
  parser.add_argument('--csv', default='benchmarks/results/rmae_overhead.csv')
  args = parser.parse_args()
  ks = [0] + [int(k) for k in args.regions.split(',')]
  rows, steps, times = {}, {}, {k: [] for k in ks}
  for k in ks:
    model = _model(k)
    inputs = _inputs(k, args.batch)
    model(inputs)
    rows[k] = {'model': 'MAE' if not k else f'R-MAE k={k}', 'k': k,
               'params_M': counting.count_params(model) / 1e6,
               'gmacs_fwd_batch2': forward_macs(model, _inputs(k, 2)) / 1e9}
    steps[k] = train_step_fn(model, inputs)
    steps[k]()  # Trace and warm up.
  for _ in range(args.steps):
    for k in ks:
      start = time.perf_counter()
      float(steps[k]())
      times[k].append(time.perf_counter() - start)
  base = rows[0]
  for k in ks:
    row = rows[k]
    row['macs_overhead_pct'] = 100 * (row['gmacs_fwd_batch2'] /
                                      base['gmacs_fwd_batch2'] - 1)
    row[f'step_s_batch{args.batch}'] = statistics.median(times[k])
    row['step_overhead_pct'] = 100 * (statistics.median(times[k]) /
                                      statistics.median(times[0]) - 1)
  fields = list(rows[0])
  print(' | '.join(fields))
  for k in ks:
    print(' | '.join(f'{v:.3f}' if isinstance(v, float) else str(v)
                     for v in rows[k].values()))
  os.makedirs(os.path.dirname(args.csv) or '.', exist_ok=True)
  with open(args.csv, 'w', newline='') as f:
    writer = csv.DictWriter(f, fields)
    writer.writeheader()
    writer.writerows(rows[k] for k in ks)
  print(f'Wrote {args.csv}')


if __name__ == '__main__':
  main()
