"""Per-op TFLite times of MobileNetV4 models, float against integer-only.

    PYTHONPATH=. .venv/bin/python benchmarks/tflite_op_profile.py \
        --models=MobileNetV4HybridMedium,MobileNetV4HybridLarge

For each model (univision's classifier at its native resolution, batch 1):
the float TFLite model and our integer-only QAT model (the flat graph of
`univision.quantization.qat`, op set 'tflite', calibrated on random images,
untrained: op times do not depend on training), each op timed alone by
`benchlib.op_profile` with the LiteRT interpreter and its XNNPACK delegate
(`--threads`); the ops of both models are timed in the same rounds.
Writes every op's time (`--csv`) and, per model, the time by op type in
both models (`--markdown`).
"""
import argparse
import csv
import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # pylint: disable=g-import-not-at-top

from benchlib import int8_paths  # pylint: disable=g-import-not-at-top
from benchlib import op_profile  # pylint: disable=g-import-not-at-top
from benchlib import tflite  # pylint: disable=g-import-not-at-top
from univision.core import machine  # pylint: disable=g-import-not-at-top
from univision.efficiency import report  # pylint: disable=g-import-not-at-top
from univision.modeling.backbones import mobilenet_v4_specs as specs  # pylint: disable=g-import-not-at-top

KINDS = ('float', 'int8_qat')
_RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        'results')


def build(model_id: str, resolution: int, kind: str,
          calibration: int) -> bytes:
  """The TFLite flatbuffer of `model_id` in `kind` (one of `KINDS`)."""
  model = report.classifier(model_id)
  if kind == 'float':
    return tflite.float_model(model, (1, resolution, resolution, 3))
  rng = np.random.default_rng(5)
  images = [rng.standard_normal((1, resolution, resolution, 3)).astype(
      np.float32) for _ in range(calibration)]
  return int8_paths.qat_ours(model, resolution, images)


def markdown(model_id: str, resolution: int,
             profiles: dict[str, tuple[list[op_profile.OpTime], float]],
             threads: int) -> list[str]:
  """Per model: whole-model times, then ms by op type in each kind."""
  lines = [f'### {model_id}, {resolution}x{resolution}, {threads} '
           'thread(s)', '',
           '| model | whole model ms | sum of ops alone ms | ops |',
           '|---|---:|---:|---:|']
  for kind, (times, whole) in profiles.items():
    lines.append(f'| {kind} | {whole:.2f} | '
                 f'{sum(t.milliseconds for t in times):.2f} | {len(times)} |')
  by_name = {kind: op_profile.by_op_type(times)
             for kind, (times, _) in profiles.items()}
  names = sorted({n for kinds in by_name.values() for n in kinds},
                 key=lambda n: -max(k.get(n, (0, 0.0))[1]
                                    for k in by_name.values()))
  lines += ['', '| op type | ' + ' | '.join(
      f'{kind} ms (ops)' for kind in profiles) + ' |',
            '|---|' + '---:|' * len(profiles)]
  for name in names:
    cells = []
    for kind in profiles:
      count, ms = by_name[kind].get(name, (0, 0.0))
      cells.append(f'{ms:.2f} ({count})' if count else '')
    lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
  return lines + ['']


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--models', default='MobileNetV4HybridMedium,'
                      'MobileNetV4HybridLarge')
  parser.add_argument('--resolution', type=int, default=0,
                      help='Square input size; 0 = each model\'s native.')
  parser.add_argument('--threads', type=int, default=2)
  parser.add_argument('--repeats', type=int, default=5,
                      help='Timed samples per op (median kept).')
  parser.add_argument('--min_sample_s', type=float, default=0.02)
  parser.add_argument('--calibration', type=int, default=4,
                      help='Random images setting the int8 ranges.')
  parser.add_argument('--csv', default=os.path.join(
      _RESULTS, 'tflite_op_profile.csv'))
  parser.add_argument('--markdown', default=os.path.join(
      _RESULTS, 'tflite_op_profile.md'))
  return parser.parse_args(argv)


def main(argv=None) -> None:
  args = parse_args(argv)
  rows, lines = [], [
      '# Per-op TFLite times, float vs integer-only (QAT)', '',
      f'`benchmarks/tflite_op_profile.py --models={args.models} '
      f'--threads={args.threads} --repeats={args.repeats}'
      + (f' --resolution={args.resolution}' if args.resolution else '')
      + '`: each op timed alone (see `benchlib/op_profile.py`), median of '
      f'its samples. CPU: {machine.cpu_description()}.', '']
  for model_id in args.models.split(','):
    if model_id not in specs.MODEL_SPECS:
      raise ValueError(f'--models: unknown model {model_id!r}.')
    resolution = args.resolution or specs.MODEL_SPECS[model_id].resolution
    profiles = op_profile.profile(
        {kind: build(model_id, resolution, kind, args.calibration)
         for kind in KINDS}, args.threads, args.repeats, args.min_sample_s)
    for kind, (times, whole) in profiles.items():
      print(f'{model_id} {kind}: whole {whole:.2f} ms', flush=True)
      rows += [{'model': model_id, 'resolution': resolution, 'kind': kind,
                'index': t.index, 'op': t.name, 'dtype': t.dtype,
                'output': t.output,
                'shape': 'x'.join(map(str, t.output_shape)),
                'ms': f'{t.milliseconds:.5f}'} for t in times]
    lines += markdown(model_id, resolution, profiles, args.threads)
  with open(args.csv, 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  with open(args.markdown, 'w') as f:
    f.write('\n'.join(lines))
  print('\n'.join(lines))


if __name__ == '__main__':
  main()
