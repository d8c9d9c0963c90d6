"""A training step's wall time under variants of its numerics and its graph.

  PYTHONPATH=. .venv/bin/python benchmarks/train_step_variants.py \
    --model=MobileNetV4ConvSmall --resolution=64 --batch=64 --passes=2

Variants (`VARIANTS`), each in its own process, the passes interleaved:
- `float32`: the step of `profile_train_step` (softmax cross-entropy,
  AdamW, BN in training mode) on a fixed random batch.
- `mixed_bfloat16`: the same under Keras's `mixed_bfloat16` policy
  (bfloat16 compute, float32 variables), which oneDNN can run on CPUs
  with AVX-512 BF16 or AMX.
- `split_batch`: the batch's two halves go through the model as two
  independent forward and backward passes in one `tf.function`, their
  gradients averaged: two chains that TensorFlow's inter-op pool can run
  on both cores at once, against the one chain whose cores wait on each
  other. (Each half's BN statistics are its own, as on two replicas.)

Printed: a markdown table of ms per step per pass (best of `--rounds`
rounds of `--steps` steps after `--warmup`), and the CPU's bf16 flags.
"""
import argparse
import json
import os
import subprocess
import sys
import time

VARIANTS = ('float32', 'mixed_bfloat16', 'split_batch')
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def time_variant(variant: str, model_id: str, resolution: int, batch: int,
                 warmup: int, rounds: int, steps: int) -> float:
  """Best-of-rounds milliseconds per step of one variant, in this process."""
  import tensorflow as tf, tf_keras  # pylint: disable=g-import-not-at-top
  import univision  # pylint: disable=g-import-not-at-top,unused-import
  from univision.modeling import classifiers  # pylint: disable=g-import-not-at-top
  if variant not in VARIANTS:
    raise ValueError(f'variant: {variant!r}; choose from {VARIANTS}.')
  if variant == 'mixed_bfloat16':
    tf_keras.mixed_precision.set_global_policy('mixed_bfloat16')
  model = classifiers.mobilenet_v4_classifier(model_id, 10)
  optimizer = tf_keras.optimizers.AdamW(learning_rate=1e-3)
  images = tf.random.stateless_normal([batch, resolution, resolution, 3],
                                      seed=[0, 3])
  labels = tf.random.stateless_uniform([batch], seed=[0, 4], maxval=10,
                                       dtype=tf.int32)
  loss_fn = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
  model(images[:1])
  optimizer.build(model.trainable_variables)
  parts = 2 if variant == 'split_batch' else 1

  def gradients(part_images, part_labels):
    with tf.GradientTape() as tape:
      logits = tf.cast(model(part_images, training=True), tf.float32)
      loss = loss_fn(part_labels, logits)
    return tape.gradient(loss, model.trainable_variables)

  @tf.function
  def step():
    per_part = [gradients(x, y) for x, y in zip(tf.split(images, parts),
                                                 tf.split(labels, parts))]
    grads = [tf.add_n(list(g)) / parts for g in zip(*per_part)]
    optimizer.apply_gradients(zip(grads, model.trainable_variables))

  for _ in range(warmup):
    step()
  best = float('inf')
  for _ in range(rounds):
    start = time.perf_counter()
    for _ in range(steps):
      step()
    # A blocking read: the steps ran.
    optimizer.iterations.numpy()
    best = min(best, (time.perf_counter() - start) / steps)
  return 1e3 * best


def bf16_flags() -> list[str]:
  """The CPU's bfloat16 and AMX flags from /proc/cpuinfo (Linux)."""
  try:
    with open('/proc/cpuinfo') as f:
      flags = next((line.split(':', 1)[1].split() for line in f
                    if line.startswith('flags')), [])
  except OSError:
    return []
  return sorted(f for f in flags if 'bf16' in f or f.startswith('amx'))


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--model', default='MobileNetV4ConvSmall')
  parser.add_argument('--resolution', type=int, default=64)
  parser.add_argument('--batch', type=int, default=64)
  parser.add_argument('--variants', default=','.join(VARIANTS))
  parser.add_argument('--passes', type=int, default=2)
  parser.add_argument('--warmup', type=int, default=3)
  parser.add_argument('--rounds', type=int, default=3)
  parser.add_argument('--steps', type=int, default=15)
  parser.add_argument('--one', default='',
                      help='Internal: time this variant here, print JSON.')
  return parser.parse_args(argv)


def main(argv=None) -> dict[str, list[float]]:
  args = parse_args(argv)
  settings = (args.model, args.resolution, args.batch, args.warmup,
              args.rounds, args.steps)
  if args.one:
    print(json.dumps({'ms': time_variant(args.one, *settings)}))
    return {}
  variants = args.variants.split(',')
  unknown = sorted(set(variants) - set(VARIANTS))
  if unknown:
    raise ValueError(f'--variants: {unknown}; choose from {VARIANTS}.')
  times = {v: [] for v in variants}
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      filter(None, [REPO, os.environ.get('PYTHONPATH')])))
  for _ in range(args.passes):
    for variant in variants:
      out = subprocess.run(
          [sys.executable, __file__, f'--one={variant}',
           f'--model={args.model}', f'--resolution={args.resolution}',
           f'--batch={args.batch}', f'--warmup={args.warmup}',
           f'--rounds={args.rounds}', f'--steps={args.steps}'],
          capture_output=True, text=True, check=True, env=env)
      times[variant].append(json.loads(out.stdout.strip().splitlines()[-1])
                            ['ms'])
  print(f'{args.model}, {args.resolution}x{args.resolution}, batch '
        f'{args.batch}; CPU bf16/AMX flags: {bf16_flags() or "none"}\n')
  print('| variant | ms per step (' + ' / '.join(
      f'pass {i + 1}' for i in range(args.passes)) + ') |\n|---|---:|')
  for variant, values in times.items():
    print(f'| {variant} | ' + ' / '.join(f'{v:.1f}' for v in values) + ' |')
  return times


if __name__ == '__main__':
  main(sys.argv[1:])
