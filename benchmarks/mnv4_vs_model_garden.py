"""Our MobileNetV4 vs Model Garden's, side by side on this machine.

For each variant, both classifiers (1000 classes, same input size) are built
on the same weights (Model Garden's, copied into ours; the relative logit
difference is recorded as metric `equivalence`), then measured:

* `tf`: TF inference latency, batch 1, `tf.function`, in ms;
* `tflite_float`: float32 TFLite latency, batch 1, ai-edge-litert, in ms;
* `tflite_int8_ptq`: the same post-training full-int8 conversion of both
  (Model Garden's `int8_full` settings, uint8 I/O, `--calibration` random
  images), latency in ms, with the model's op and float-op counts;
* `tflite_int8_qat`: each implementation's own QAT graph, converted
  untrained (ours: univision's flat QAT graph; Model Garden's:
  `official.projects.qat`, which keeps float ops on the conv models and
  fails on the hybrids: recorded as a failed row with the error);
* `train_peak_rss`: peak resident memory of a process while it runs 3
  training steps of one implementation (`benchlib.train_memory`), in MiB,
  same batch and input size as `train`; the median of `--rss_repeats`
  processes per implementation, alternating;
* `train`: training throughput, batch `--train_batch`, one SGD step of a
  `tf.function`, in images/s, at the input size capped by
  `--max_train_resolution`.

Every latency is the median of `--repeats` rounds (after `--warmup` calls)
in which ours and Model Garden's run in turn (order alternating), so load
from other processes hits both alike; one sample is the mean of as many
back-to-back calls as last `--min_sample_ms`. All TFLite models of a
variant (float, PTQ and QAT, both implementations) are timed in the same
rounds, so the second table's int8/float ratios are also one run's.
Training uses `--train_repeats` single steps after `--train_warmup` (the
first traces).
TFLite runs with `--threads` threads and the default XNNPACK delegate.
Where both implementations convert to the same TFLite op sequence (the conv
models), the row's note says so: their TFLite latencies can then differ only
by noise. A full run of all five models took about 20-25 minutes on an idle
2-core machine, mostly in the ~20 TFLite conversions (repeats are cheap),
before `train_peak_rss` added its ten child processes (start-up and three
training steps each).

Usage (quick check; the full run is `make bench`):
  PYTHONPATH=. .venv/bin/python benchmarks/mnv4_vs_model_garden.py \
    --models=MobileNetV4ConvSmall --repeats=3 --resolution=96 \
    --csv=/tmp/mnv4.csv --plot=/tmp/mnv4.png
"""
import argparse
import gc
import os
import re
import sys
import tempfile
import time
import traceback

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf, tf_keras  # pylint: disable=g-import-not-at-top

from benchlib import int8_paths  # pylint: disable=g-import-not-at-top
from benchlib import model_garden_pair  # pylint: disable=g-import-not-at-top
from benchlib import results  # pylint: disable=g-import-not-at-top
from benchlib import timing  # pylint: disable=g-import-not-at-top
from benchlib import train_memory as train_memory_lib  # pylint: disable=g-import-not-at-top
from benchlib import train_step  # pylint: disable=g-import-not-at-top
from benchlib import tflite  # pylint: disable=g-import-not-at-top
from univision.modeling.backbones import mobilenet_v4_specs as specs  # pylint: disable=g-import-not-at-top

OURS, MG = 'ours', 'model_garden'
METRICS = ('tf', 'tflite_float', 'tflite_int8_ptq', 'tflite_int8_qat',
           'train_peak_rss', 'train')
TFLITE_METRICS = ('tflite_float', 'tflite_int8_ptq', 'tflite_int8_qat')
# Metric -> (unit, whether higher is better).
UNITS = {'tf': ('ms', False), 'tflite_float': ('ms', False),
         'tflite_int8_ptq': ('ms', False), 'tflite_int8_qat': ('ms', False),
         'train_peak_rss': ('MiB', False), 'train': ('images/s', True)}


def _failed(model_id: str, metric: str, impl: str, error: Exception,
            **extra) -> dict:
  frame = traceback.extract_tb(error.__traceback__)[-1]
  where = f'{os.path.basename(frame.filename)}:{frame.lineno} {frame.name}'
  # TF wraps the cause in a long traceback; its last "XError: ..." line
  # names it.
  causes = re.findall(r'^\s*\w+(?:Error|Exception): (.+)$', str(error),
                      re.MULTILINE)
  text = (causes[-1] if causes else str(error).strip().split('\n')[0]
          ) or '(no message)'
  message = f'{type(error).__name__} at {where}: {text}'
  return results.row(model_id, metric, impl, UNITS[metric][0],
                     error=message[:300], **extra)


def tf_latency(models: dict, shape: tuple[int, ...], args) -> list[dict]:
  """Batch-1 `tf.function` inference latency of each model (ms)."""
  image = tf.random.stateless_normal(shape, seed=[0, 2])
  calls = {}
  for impl, model in models.items():
    function = tf.function(lambda x, m=model: m(x, training=False))
    calls[impl] = lambda f=function: f(image).numpy()
  times = timing.interleaved(calls, args.repeats, args.warmup,
                               args.min_sample_ms / 1e3)
  return [results.row(args.model_id, 'tf', impl, 'ms',
                      timing.summarize([t * 1e3 for t in samples]))
          for impl, samples in times.items()]


def _tflite_latency(converters: dict, folder: str, args) -> list[dict]:
  """Converts, then times every TFLite model in one interleaved run.

  Args:
    converters: (metric, impl) -> a call returning the TFLite flatbuffer.
    folder: Where the files go.
    args: The command line.

  Returns:
    A row per (metric, impl), failed conversions included. Float and int8
    models are timed in the same rounds, so their ratio is one run's.
  """
  rows, calls, ops, sequences = [], {}, {}, {}
  for (metric, impl), convert in converters.items():
    path = os.path.join(folder, f'{args.model_id}_{metric}_{impl}.tflite')
    try:
      with open(path, 'wb') as f:
        f.write(convert())
      ops[metric, impl] = tflite.op_counts(path)
      sequences.setdefault(metric, {})[impl] = tuple(tflite.op_sequence(path))
      calls[metric, impl] = tflite.invoker(path, args.threads)
    except Exception as e:  # pylint: disable=broad-except
      rows.append(_failed(args.model_id, metric, impl, e))
  if calls:
    times = timing.interleaved(calls, args.repeats, args.warmup,
                               args.min_sample_ms / 1e3)
    for (metric, impl), samples in times.items():
      total, floats = ops[metric, impl]
      same = sequences.get(metric, {})
      note = ('same TFLite op sequence for both'
              if len(same) == 2 and len(set(same.values())) == 1 else '')
      rows.append(results.row(
          args.model_id, metric, impl, 'ms',
          timing.summarize([t * 1e3 for t in samples]),
          total_ops=total, float_ops=floats, note=note))
  return sorted(rows, key=lambda r: (TFLITE_METRICS.index(r['metric']),
                                     r['impl'] != OURS))


def train_memory(resolution: int, args) -> list[dict]:
  """Peak RSS of a process training each implementation (MiB).

  `args.rss_repeats` processes per implementation, in alternating order
  (ours first in even rounds); the row is their median. One process's peak
  moves by tens of MiB from run to run (allocator and thread timing), more
  than the two implementations differ by.
  """
  samples = {OURS: [], MG: []}
  errors = {}
  for round_ in range(args.rss_repeats):
    order = (OURS, MG) if round_ % 2 == 0 else (MG, OURS)
    for impl in order:
      if impl in errors:
        continue
      try:
        samples[impl].append(train_memory_lib.peak_rss_mib(
            impl, args.model_id, resolution, args.train_batch))
      except RuntimeError as e:
        errors[impl] = e
  rows = []
  for impl in (OURS, MG):
    if impl in errors:
      rows.append(_failed(args.model_id, 'train_peak_rss', impl,
                          errors[impl]))
      continue
    rows.append(results.row(
        args.model_id, 'train_peak_rss', impl, 'MiB',
        timing.summarize(samples[impl]),
        note=f'{len(samples[impl])} processes per impl, alternating: build, '
        f'3 training steps, batch {args.train_batch}, {resolution}px'))
  return rows


def train_throughput(models: dict, resolution: int, args) -> list[dict]:
  """Training images/s at batch `args.train_batch` (one step per sample)."""
  calls = {impl: train_step.train_step(
      model, args.train_batch, resolution, 1000,
      tf_keras.optimizers.SGD(learning_rate=1e-3, momentum=0.9))
           for impl, model in models.items()}
  times = timing.interleaved(calls, args.train_repeats, args.train_warmup)
  return [results.row(args.model_id, 'train', impl, 'images/s',
                      timing.summarize([args.train_batch / t
                                        for t in samples]),
                      note=f'batch {args.train_batch}')
          for impl, samples in times.items()]


def measure_model(model_id: str, args, folder: str) -> list[dict]:
  """All requested metrics of one variant, ours and Model Garden's."""
  args.model_id = model_id
  resolution = args.resolution or specs.MODEL_SPECS[model_id].resolution
  shape = (1, resolution, resolution, 3)
  ours, theirs, difference = model_garden_pair.build_pair(model_id,
                                                          resolution)
  models = {OURS: ours, MG: theirs}
  rows = [results.row(model_id, 'equivalence', 'ours_vs_model_garden',
                      'max|dlogit|/max|logit|', median=difference,
                      note='same weights (Model Garden\'s copied into ours)')]
  rng = np.random.default_rng(5)
  images = [rng.standard_normal(shape).astype(np.float32)
            for _ in range(args.calibration)]
  metrics = [m for m in METRICS if m not in args.skip]
  converters = {
      'tflite_float': {impl: (lambda m=m: tflite.float_model(m, shape))
                       for impl, m in models.items()},
      'tflite_int8_ptq': {impl: (lambda m=m: int8_paths.ptq(m, resolution,
                                                            images))
                          for impl, m in models.items()},
      'tflite_int8_qat': {
          OURS: lambda: int8_paths.qat_ours(ours, resolution, images),
          MG: lambda: int8_paths.qat_model_garden(theirs, model_id,
                                                  resolution)}}
  train_resolution = min(resolution, args.max_train_resolution or resolution)
  # The TFLite metrics are one step: all their models timed in one run.
  steps = dict.fromkeys('tflite' if m in TFLITE_METRICS else m
                        for m in metrics)
  for step in steps:
    start = time.perf_counter()
    if step == 'tf':
      rows += tf_latency(models, shape, args)
    elif step == 'tflite':
      rows += _tflite_latency(
          {(m, impl): convert for m in metrics if m in TFLITE_METRICS
           for impl, convert in converters[m].items()}, folder, args)
    elif step == 'train_peak_rss':
      rows += train_memory(train_resolution, args)
    elif step == 'train':  # Last: it changes the weights.
      rows += train_throughput(models, train_resolution, args)
    print(f'{model_id} @ {resolution}: {step} done in '
          f'{time.perf_counter() - start:.0f} s', flush=True)
  for r in rows:
    r['resolution'] = resolution
  return rows


def parse_args(argv=None) -> argparse.Namespace:
  """The command line; see the module docstring."""
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--models', default=','.join(
      model_garden_pair.model_garden_ids(specs.MODEL_SPECS)),
                      help='Comma-separated MobileNetV4 model ids (default: '
                      'every one Model Garden has).')
  parser.add_argument('--resolution', type=int, default=0,
                      help='Square input size; 0 = each model\'s native.')
  parser.add_argument('--repeats', type=int, default=30,
                      help='Timed rounds per inference metric.')
  parser.add_argument('--warmup', type=int, default=3)
  parser.add_argument('--train_repeats', type=int, default=5,
                      help='Timed training steps per implementation.')
  parser.add_argument('--train_warmup', type=int, default=2,
                      help='Untimed steps (the first one traces).')
  parser.add_argument('--train_batch', type=int, default=32)
  parser.add_argument('--rss_repeats', type=int, default=3,
                      help='Training processes per implementation for the '
                      'peak RSS (median reported).')
  parser.add_argument('--max_train_resolution', type=int, default=0,
                      help='Caps the training input size (0: none). '
                      'Hybrid-L at 384 and batch 32 with both models loaded '
                      'exceeds 24 GB.')
  parser.add_argument('--min_sample_ms', type=float, default=20.0,
                      help='Each latency sample averages back-to-back calls '
                      'lasting at least this long (0: single calls).')
  parser.add_argument('--threads', type=int, default=2)
  parser.add_argument('--calibration', type=int, default=8,
                      help='Random images calibrating the int8 models.')
  parser.add_argument('--skip', default='',
                      help='Comma-separated metrics to skip, of: '
                      + ','.join(METRICS))
  parser.add_argument('--csv', default=None)
  parser.add_argument('--plot', default=None)
  args = parser.parse_args(argv)
  args.models = [m for m in args.models.split(',') if m]
  args.skip = [m for m in args.skip.split(',') if m]
  unknown = [m for m in args.models if m not in specs.MODEL_SPECS]
  unknown += [m for m in args.skip if m not in METRICS]
  if unknown:
    parser.error(f'unknown model ids or metrics: {unknown}')
  return args


def int8_float_table(rows: list[dict]) -> str:
  """Per variant and implementation: int8 TFLite latency / float's."""
  by_key = {(r['group'], r['impl'], r['metric']): r for r in rows
            if r['metric'] in TFLITE_METRICS}
  lines = ['| group | impl | float ms | int8 QAT ms | int8 QAT / float | '
           'int8 PTQ ms | int8 PTQ / float |',
           '|---|---|---|---|---|---|---|']
  keys = dict.fromkeys((g, i) for g, i, _ in by_key)
  for group, impl in keys:
    cells = [group, impl]
    base = by_key.get((group, impl, 'tflite_float'))
    cells.append(results.cell(base))
    for metric in ('tflite_int8_qat', 'tflite_int8_ptq'):
      r = by_key.get((group, impl, metric))
      value = results.ratio(r, base)
      cells += [results.cell(r), '-' if value is None else f'{value:.3f}']
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def _write(rows: list[dict], args) -> str:
  """Writes the CSV and the two tables of `rows` (if asked); returns them."""
  table = results.ratio_table(rows, OURS, MG,
                              {m: hi for m, (_, hi) in UNITS.items()})
  table += ('\n\nint8 / float TFLite latency (same rounds):\n\n'
            + int8_float_table(rows))
  if args.csv:
    results.write_csv(rows, args.csv)
    with open(os.path.splitext(args.csv)[0] + '_ratios.md', 'w') as f:
      f.write(table + '\n')
  return table


def main(argv=None) -> list[dict]:
  """Runs the benchmark; returns the rows (also written to --csv)."""
  args = parse_args(argv)
  rows = []
  with tempfile.TemporaryDirectory() as folder:
    for model_id in args.models:
      rows += measure_model(model_id, args, folder)
      table = _write(rows, args)  # After each model: a crash loses one.
      tf_keras.backend.clear_session()
      gc.collect()
  print(table)
  if args.plot:
    results.plot(rows, (OURS, MG), list(METRICS), args.plot,
                 title=f'ours vs Model Garden, medians with IQR, '
                 f'{args.threads} TFLite threads')
  return rows


if __name__ == '__main__':
  main(sys.argv[1:])
