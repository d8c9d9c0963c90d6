"""Mobile MQA vs plain multi-head self-attention at equal dims.

The MobileNetV4 paper (arXiv 2404.10518) reports that multi-query attention
(one shared key/value head) gives a 39% speedup over multi-head
self-attention (MHSA), measured on EdgeTPU and the Samsung S23 GPU. Here the
attention layers alone are timed on this CPU: univision's
`MobileMultiQueryAttention` against `benchlib.mhsa.MultiHeadSelfAttention`,
the same layer with `num_heads` key and value heads. The shapes are those of
the Mobile MQA blocks of MNv4-Hybrid-M and -L (heads, key/value dim and
channels from `mobilenet_v4_specs`, the map size from `--resolution`: 384
gives the 24x24 stride-16 and 12x12 stride-32 maps Model Garden's specs are
named after), each with and without K/V downsampling (stride 2).

Measured: `tf` (batch 1, `tf.function`) and `tflite_float` (float32 TFLite,
ai-edge-litert, `--threads` threads), medians of `--repeats` rounds in which
MQA and MHSA of one shape run in turn. Reported: mqa/mhsa latency ratio,
latency reduction 1 - mqa/mhsa and speedup mhsa/mqa - 1 (both in %).

Usage:
  PYTHONPATH=. .venv/bin/python benchmarks/mqa_vs_mhsa.py --repeats=50 \
    --csv=benchmarks/results/mqa_vs_mhsa.csv \
    --plot=benchmarks/results/mqa_vs_mhsa.png
"""
import argparse
import dataclasses
import os
import sys
import tempfile

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import tensorflow as tf, tf_keras  # pylint: disable=g-import-not-at-top

from benchlib import mhsa  # pylint: disable=g-import-not-at-top
from benchlib import results  # pylint: disable=g-import-not-at-top
from benchlib import timing  # pylint: disable=g-import-not-at-top
from benchlib import tflite  # pylint: disable=g-import-not-at-top
from univision.modeling.backbones import mobilenet_v4_specs as specs  # pylint: disable=g-import-not-at-top
from univision.modeling.layers import mobile_mqa  # pylint: disable=g-import-not-at-top

MQA, MHSA = 'mqa', 'mhsa'
METRICS = ('tf', 'tflite_float')
HYBRIDS = ('MobileNetV4HybridMedium', 'MobileNetV4HybridLarge')
PAPER_SPEEDUP_PCT = 39.0


@dataclasses.dataclass(frozen=True)
class Case:
  """One attention shape: a Mobile MQA stage of a hybrid model."""
  model_id: str
  level: int  # log2 of the stage's stride.
  size: int  # Square map size.
  channels: int
  num_heads: int
  key_dim: int

  def name(self, kv_strides: int) -> str:
    short = self.model_id.replace('MobileNetV4', '')
    return (f'{short} L{self.level} {self.size}x{self.size}x{self.channels} '
            f'h{self.num_heads} d{self.key_dim} kv{kv_strides}')


def cases(resolution: int, model_ids=HYBRIDS) -> list[Case]:
  """The first Mobile MQA block of each stage of each model, at `resolution`."""
  found = []
  for model_id in model_ids:
    stride, channels, levels = 1, 3, set()
    for block in specs.MODEL_SPECS[model_id].blocks:
      stride *= block.strides
      level = stride.bit_length() - 1
      if block.block == 'mqa' and level not in levels:
        levels.add(level)
        found.append(Case(model_id, level, -(-resolution // stride), channels,
                          block.num_heads, block.key_dim))
      channels = block.filters or channels
  return found


def layer(kind: str, case: Case, kv_strides: int) -> tf_keras.Model:
  """A batch-1 model around one attention layer of `kind`."""
  cls = (mobile_mqa.MobileMultiQueryAttention if kind == MQA
         else mhsa.MultiHeadSelfAttention)
  inputs = tf_keras.Input((case.size, case.size, case.channels),
                          batch_size=1)
  attention = cls(num_heads=case.num_heads, key_dim=case.key_dim,
                  kv_strides=kv_strides)
  return tf_keras.Model(inputs, attention(inputs))


def measure_case(case: Case, kv_strides: int, args, folder: str
                 ) -> list[dict]:
  """TF and TFLite float latency of MQA and MHSA at one shape."""
  tf_keras.utils.set_random_seed(0)
  models = {kind: layer(kind, case, kv_strides) for kind in (MQA, MHSA)}
  group = case.name(kv_strides)
  shape = (1, case.size, case.size, case.channels)
  image = tf.random.stateless_normal(shape, seed=[0, 1])
  extra = dict(resolution=args.resolution, kv_strides=kv_strides)
  rows = []
  if 'tf' not in args.skip:
    calls = {}
    for kind, model in models.items():
      function = tf.function(lambda x, m=model: m(x, training=False))
      calls[kind] = lambda f=function: f(image).numpy()
    times = timing.interleaved(calls, args.repeats, args.warmup,
                               args.min_sample_ms / 1e3)
    rows += [results.row(group, 'tf', kind, 'ms',
                         timing.summarize([t * 1e3 for t in samples]),
                         **{**extra, 'params': models[kind].count_params()})
             for kind, samples in times.items()]
  if 'tflite_float' not in args.skip:
    calls, ops = {}, {}
    for kind, model in models.items():
      path = os.path.join(folder, f'{kind}.tflite')
      with open(path, 'wb') as f:
        f.write(tflite.float_model(model, shape))
      ops[kind] = tflite.op_counts(path)
      calls[kind] = tflite.invoker(path, args.threads)
    times = timing.interleaved(calls, args.repeats, args.warmup,
                               args.min_sample_ms / 1e3)
    rows += [results.row(group, 'tflite_float', kind, 'ms',
                         timing.summarize([t * 1e3 for t in samples]),
                         total_ops=ops[kind][0], float_ops=ops[kind][1],
                         **{**extra, 'params': models[kind].count_params()})
             for kind, samples in times.items()]
  return rows


def speedup_table(rows: list[dict]) -> str:
  """Markdown: per shape and metric, latency reduction and speedup (%)."""
  lines = ['| shape | metric | MQA ms | MHSA ms | MQA/MHSA | latency '
           'reduction % | speedup % (paper: 39) |', '|---|---|---|---|---|---|---|']
  by_key = {}
  for r in rows:
    by_key.setdefault((r['group'], r['metric']), {})[r['impl']] = r
  for (group, metric), pair in by_key.items():
    value = results.ratio(pair.get(MQA), pair.get(MHSA))
    if value is None:
      continue
    lines.append(f'| {group} | {metric} | {pair[MQA]["median"]:.3f} | '
                 f'{pair[MHSA]["median"]:.3f} | {value:.3f} | '
                 f'{(1 - value) * 100:.1f} | {(1 / value - 1) * 100:.1f} |')
  return '\n'.join(lines)


def parse_args(argv=None) -> argparse.Namespace:
  """The command line; see the module docstring."""
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--resolution', type=int, default=384,
                      help='Model input size the map sizes derive from.')
  parser.add_argument('--models', default=','.join(HYBRIDS))
  parser.add_argument('--kv_strides', default='1,2')
  parser.add_argument('--repeats', type=int, default=50)
  parser.add_argument('--warmup', type=int, default=5)
  parser.add_argument('--min_sample_ms', type=float, default=20.0,
                      help='Each latency sample averages back-to-back calls '
                      'lasting at least this long (0: single calls).')
  parser.add_argument('--threads', type=int, default=2)
  parser.add_argument('--skip', default='',
                      help='Comma-separated metrics to skip, of: '
                      + ','.join(METRICS))
  parser.add_argument('--csv', default=None)
  parser.add_argument('--plot', default=None)
  args = parser.parse_args(argv)
  args.models = [m for m in args.models.split(',') if m]
  args.kv_strides = [int(s) for s in args.kv_strides.split(',') if s]
  args.skip = [m for m in args.skip.split(',') if m]
  unknown = [m for m in args.models if m not in HYBRIDS]
  unknown += [m for m in args.skip if m not in METRICS]
  if unknown:
    parser.error(f'unknown hybrid model ids or metrics: {unknown}')
  return args


def main(argv=None) -> list[dict]:
  """Runs the benchmark; returns the rows (also written to --csv)."""
  args = parse_args(argv)
  rows = []
  with tempfile.TemporaryDirectory() as folder:
    for case in cases(args.resolution, args.models):
      for kv_strides in args.kv_strides:
        rows += measure_case(case, kv_strides, args, folder)
        print(f'done: {case.name(kv_strides)}', flush=True)
  table = speedup_table(rows)
  print(table)
  if args.csv:
    results.write_csv(rows, args.csv)
    with open(os.path.splitext(args.csv)[0] + '_speedup.md', 'w') as f:
      f.write(table + '\n')
  if args.plot:
    results.plot(rows, (MQA, MHSA), list(METRICS), args.plot,
                 title='Mobile MQA vs MHSA, equal dims, batch 1, medians '
                 'with IQR')
  return rows


if __name__ == '__main__':
  main(sys.argv[1:])
