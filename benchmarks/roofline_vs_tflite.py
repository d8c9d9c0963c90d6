"""Roofline estimates vs measured float TFLite latency of the five MobileNetV4s.

Each classifier (1000 classes, random weights: float latency does not depend
on their values) is converted to a float32 TFLite model at its native
resolution and run with ai-edge-litert (batch 1, `--threads` threads, the
default XNNPACK delegate), timed as `make bench` times TFLite: after
`--warmup` calls each, `--repeats` interleaved rounds, each sample the mean
of as many back-to-back calls as last `--min_sample_ms` (steady state, as a
deployed model runs; `--min_sample_ms=0` times single calls, whose weights
were pushed out of the caches by the other models). The median per model is
reported next to the roofline estimate on the `--hardware` profile, and the
Spearman rank correlation of the two (and, for comparison, of MACs and
measured latency) is printed.

Usage:
  PYTHONPATH=. .venv/bin/python benchmarks/roofline_vs_tflite.py --repeats=30 \
    --csv=benchmarks/results/roofline_vs_tflite.csv
"""
import argparse
import csv
import os
import tempfile

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from scipy import stats  # pylint: disable=g-import-not-at-top

from benchlib import timing  # pylint: disable=g-import-not-at-top
from benchlib import tflite  # pylint: disable=g-import-not-at-top
from univision.efficiency import hardware  # pylint: disable=g-import-not-at-top
from univision.efficiency import report  # pylint: disable=g-import-not-at-top
from univision.efficiency import roofline  # pylint: disable=g-import-not-at-top
from univision.modeling.backbones import mobilenet_v4_specs as specs  # pylint: disable=g-import-not-at-top


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--hardware', default='this_machine')
  parser.add_argument('--threads', type=int, default=2)
  parser.add_argument('--warmup', type=int, default=3)
  parser.add_argument('--repeats', type=int, default=30)
  parser.add_argument('--min_sample_ms', type=float, default=20.0)
  parser.add_argument('--csv', default=None)
  args = parser.parse_args()
  profile = hardware.load_profile(args.hardware)
  rows, invokers = {}, {}
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
        f.write(tflite.float_model(model, shape))
      invokers[model_id] = tflite.invoker(path, args.threads)
    times = timing.interleaved(invokers, args.repeats, args.warmup,
                               args.min_sample_ms / 1e3)
  for model_id, row in rows.items():
    summary = timing.summarize(times[model_id])
    row['measured_ms'] = summary.median * 1e3
    row['measured_q1_ms'] = summary.q1 * 1e3
    row['measured_q3_ms'] = summary.q3 * 1e3
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
