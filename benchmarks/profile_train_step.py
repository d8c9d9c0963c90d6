"""Where a training step's time goes: TensorFlow's profiler, grouped by kind.

  PYTHONPATH=. .venv/bin/python benchmarks/profile_train_step.py \
    --models=MobileNetV4ConvSmall,MobileNetV4HybridMedium \
    --resolution=64 --batch=64 --steps=10 --output=/tmp/train_profile.md

For each model: a univision classifier, one compiled (`tf.function`)
training step (softmax cross-entropy, AdamW, BN in training mode) on a
fixed random batch, `--warmup` steps, then `--steps` steps under
`tf.profiler.experimental`. The profile's per-op self-times (the
profiler's own `framework_op_stats` tool) are grouped into kinds (`KINDS`:
forward conv, its input and filter gradients, depthwise likewise, batch
norm, attention products, the optimizer update, idle, other) and printed
per step as a markdown table, with the 12 most expensive op types.
Absolute times depend on the machine and its load: compare shares, and
ratios taken in one run.
"""
import argparse
import collections
import glob
import json
import os
import re
import sys
import tempfile
import time

import tensorflow as tf, tf_keras
from tensorflow.python.profiler.internal import _pywrap_profiler_plugin  # pylint: disable=g-direct-tensorflow-import

import univision  # pylint: disable=unused-import  (sets the Keras mode)
from benchlib import train_step
from univision.modeling import classifiers

# (kind, op-type pattern, op-name pattern), first match wins; self-times of
# op types matching neither pattern of any row are 'other'.
KINDS = (
    ('idle', r'^IDLE$', ''),
    ('optimizer update', '', r'^(AdamW|SGD|Adam|optimizer)/'),
    ('depthwise: filter gradient', r'DepthwiseConv2dNativeBackpropFilter', ''),
    ('depthwise: input gradient', r'DepthwiseConv2dNativeBackpropInput', ''),
    ('depthwise: forward', r'DepthwiseConv2dNative$', ''),
    ('conv: filter gradient', r'Conv2DBackpropFilter', ''),
    ('conv: input gradient', r'Conv2DBackpropInput', ''),
    ('conv: forward', r'(_MklNative|_Mkl|_Fused)?Conv2D$|_FusedConv2D', ''),
    ('batch norm', r'FusedBatchNorm', ''),
    ('attention products', r'BatchMatMul|Einsum|MatMul', ''),
)


def kind_of(op_type: str, op_name: str) -> str:
  """The `KINDS` entry of one profiled op ('other' if none matches)."""
  for kind, type_pattern, name_pattern in KINDS:
    if ((type_pattern and re.search(type_pattern, op_type)) or
        (name_pattern and re.search(name_pattern, op_name))):
      return kind
  return 'other'


def op_rows(xplane_path: str) -> list[dict]:
  """(type, name, self-time us) of every op in a profile."""
  data, ok = _pywrap_profiler_plugin.xspace_to_tools_data(
      [xplane_path], 'framework_op_stats', {})
  if not ok:
    raise RuntimeError(f'{xplane_path}: the profiler could not read it.')
  table = json.loads(data)[0]
  columns = [c['id'] for c in table['cols']]
  rows = []
  for row in table['rows']:
    values = dict(zip(columns, (cell['v'] for cell in row['c'])))
    rows.append({'type': values['type'], 'name': values['operation'],
                 'self_us': float(values['total_self_time'])})
  return rows


def profile(model_id: str, resolution: int, batch: int, steps: int,
            warmup: int, log_dir: str, jit_compile: bool = False) -> dict:
  """Per-step milliseconds by kind and by op type, and the wall time."""
  model = classifiers.mobilenet_v4_classifier(model_id, 10)
  step = train_step.train_step(model, batch, resolution, 10,
                               tf_keras.optimizers.AdamW(learning_rate=1e-3),
                               jit_compile)
  for _ in range(warmup):
    step()
  tf.profiler.experimental.start(log_dir)
  start = time.perf_counter()
  for _ in range(steps):
    step()
  wall = (time.perf_counter() - start) / steps
  tf.profiler.experimental.stop()
  paths = sorted(glob.glob(os.path.join(log_dir, '**', '*.xplane.pb'),
                           recursive=True), key=os.path.getmtime)
  if not paths:
    raise RuntimeError(f'{log_dir}: the profiler wrote no trace.')
  by_kind = collections.Counter()
  by_type = collections.Counter()
  for row in op_rows(paths[-1]):
    ms = row['self_us'] / 1e3 / steps
    by_kind[kind_of(row['type'], row['name'])] += ms
    if row['type'] != 'IDLE':
      by_type[row['type']] += ms
  return {'model_id': model_id, 'wall_ms': 1e3 * wall, 'by_kind': by_kind,
          'by_type': by_type, 'jit_compile': jit_compile}


def markdown(result: dict, resolution: int, batch: int) -> str:
  """One model's tables: time per step by kind, then the top op types."""
  total = sum(result['by_kind'].values())
  xla = ', XLA (jit_compile)' if result['jit_compile'] else ''
  lines = [f'### {result["model_id"]}, {resolution}x{resolution}, batch '
           f'{batch}{xla}: {result["wall_ms"]:.1f} ms per step (wall)', '',
           '| kind | ms per step | share of profiled time |',
           '|---|---:|---:|']
  lines += [f'| {kind} | {ms:.2f} | {100 * ms / total:.1f}% |'
            for kind, ms in result['by_kind'].most_common()]
  lines += ['', '| op type (most expensive 12) | ms per step |', '|---|---:|']
  lines += [f'| `{op}` | {ms:.2f} |'
            for op, ms in result['by_type'].most_common(12)]
  return '\n'.join(lines) + '\n'


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--models', default='MobileNetV4ConvSmall,'
                      'MobileNetV4HybridMedium')
  parser.add_argument('--resolution', type=int, default=64)
  parser.add_argument('--batch', type=int, default=64)
  parser.add_argument('--steps', type=int, default=10)
  parser.add_argument('--warmup', type=int, default=3)
  parser.add_argument('--jit_compile', action='store_true',
                      help='Compile the step with XLA.')
  parser.add_argument('--output', default='')
  return parser.parse_args(argv)


def main(argv=None) -> list[dict]:
  args = parse_args(argv)
  results, text = [], []
  for model_id in args.models.split(','):
    with tempfile.TemporaryDirectory() as log_dir:
      results.append(profile(model_id, args.resolution, args.batch,
                             args.steps, args.warmup, log_dir,
                             args.jit_compile))
    text.append(markdown(results[-1], args.resolution, args.batch))
    print(text[-1], flush=True)
  if args.output:
    with open(args.output, 'w') as f:
      f.write('\n'.join(text))
  return results


if __name__ == '__main__':
  main(sys.argv[1:])
