"""Roofline estimates vs measured float TFLite latency of the five MobileNetV4s.

Each classifier (1000 classes, random weights: float latency does not depend
on their values) is converted to a float32 TFLite model at its native
resolution and run with ai-edge-litert (batch 1, `--threads` threads, the
default XNNPACK delegate). After `--warmup` runs each, `--repeats` rounds run
every model once in turn, so that load from other processes hits all models
alike; the median per model is reported next to the roofline estimate on
the `--hardware` profile, and the Spearman rank correlation of the two (and,
for comparison, of MACs and measured latency) is printed.

Usage:
  PYTHONPATH=. .venv/bin/python benchmarks/roofline_vs_tflite.py --repeats=30 \
    --csv=benchmarks/results/roofline_vs_tflite.csv
"""
import argparse
import csv
import os
import statistics
import tempfile
import time

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # pylint: disable=g-import-not-at-top
from scipy import stats  # pylint: disable=g-import-not-at-top
from ai_edge_litert import interpreter as litert  # pylint: disable=g-import-not-at-top

from univision.efficiency import hardware  # pylint: disable=g-import-not-at-top
from univision.efficiency import report  # pylint: disable=g-import-not-at-top
from univision.efficiency import roofline  # pylint: disable=g-import-not-at-top
from univision.modeling.backbones import mobilenet_v4_specs as specs  # pylint: disable=g-import-not-at-top
from univision.serving import keras_converter  # pylint: disable=g-import-not-at-top


def float_tflite(model, input_shape: tuple[int, ...]) -> bytes:
  """A float32 TFLite flatbuffer of `model` at a fixed input shape."""
  return keras_converter.converter(model, input_shape).convert()


def interpreter(path: str, threads: int) -> litert.Interpreter:
  """A ready interpreter with a random input set."""
  runner = litert.Interpreter(model_path=path, num_threads=threads)
  runner.allocate_tensors()
  detail = runner.get_input_details()[0]
  image = np.random.default_rng(0).standard_normal(detail['shape'])
  runner.set_tensor(detail['index'], image.astype(np.float32))
  return runner


def timed_ms(runner: litert.Interpreter) -> float:
  start = time.perf_counter()
  runner.invoke()
  return (time.perf_counter() - start) * 1e3


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--hardware', default='this_machine')
  parser.add_argument('--threads', type=int, default=2)
  parser.add_argument('--warmup', type=int, default=3)
  parser.add_argument('--repeats', type=int, default=30)
  parser.add_argument('--csv', default=None)
  args = parser.parse_args()
  profile = hardware.load_profile(args.hardware)
  rows, runners = {}, {}
  with tempfile.TemporaryDirectory() as folder:
    for model_id in report.PAPER:
      resolution = specs.MODEL_SPECS[model_id].resolution
      shape = (1, resolution, resolution, 3)
      model = report.classifier(model_id)
      records = roofline.layer_records(model, shape, profile.weight_bytes,
                                       profile.activation_bytes)
      rows[model_id] = {
          'model': model_id, 'resolution': resolution,
          'gmacs': sum(r.macs for r in records) / 1e9,
          'estimated_ms': roofline.model_time(records, profile) * 1e3}
      path = os.path.join(folder, f'{model_id}.tflite')
      with open(path, 'wb') as f:
        f.write(float_tflite(model, shape))
      runners[model_id] = interpreter(path, args.threads)
      for _ in range(args.warmup):
        runners[model_id].invoke()
    times = {model_id: [] for model_id in runners}
    for _ in range(args.repeats):
      for model_id, runner in runners.items():
        times[model_id].append(timed_ms(runner))
  for model_id, row in rows.items():
    row['measured_ms'] = statistics.median(times[model_id])
    row['measured_over_estimated'] = row['measured_ms'] / row['estimated_ms']
    print(', '.join(f'{k}={v:.3f}' if isinstance(v, float) else f'{k}={v}'
                    for k, v in row.items()))
  measured = [r['measured_ms'] for r in rows.values()]
  rho = stats.spearmanr([r['estimated_ms'] for r in rows.values()], measured)
  rho_macs = stats.spearmanr([r['gmacs'] for r in rows.values()], measured)
  print(f'Spearman rho, roofline estimate vs measured: {rho.statistic:.3f}')
  print(f'Spearman rho, MACs vs measured: {rho_macs.statistic:.3f}')
  if args.csv:
    with open(args.csv, 'w', newline='') as f:
      writer = csv.DictWriter(f, fieldnames=list(next(iter(rows.values()))))
      writer.writeheader()
      writer.writerows(rows.values())


if __name__ == '__main__':
  main()
