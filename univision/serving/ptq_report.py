"""Is post-training int8 reliable? Repeated runs and estimators, measured.

  python -m univision.serving.ptq_report \
    --experiment=mnv4_fashion_mnist --config_file=<demo yaml> \
    --checkpoint_path=runs/demo --output_dir=results/ptq \
    --held_out=data/fashion_mnist/train-00007-of-00008.tfrecord

1. Runs the identical `export.py --quant_type=ptq` command `--runs` times,
   each in a fresh process, and evaluates each int8 model against the float
   TFLite model on the experiment's `validation_data`
   (`evaluate_tflite`): `runs.csv` with `run, float_top1, ptq_top1,
   agreement, sha256` (the file's hash: equal hashes are equal bytes).
2. Calibrates the same model with every estimator of
   `calibration.ESTIMATORS` on the default calibration images, as they are
   and with one image made `--outlier_gain` times brighter, and evaluates
   each on `--held_out` (images of neither the calibration nor the
   evaluated split, where the default was chosen): `estimators.csv`.
3. `summary.md`: both tables and issue #24's targets, each met or missed:
   PTQ top-1 within 1 point of float in every run, agreement >= 97%.

The TFLite files go to `--work_dir`.
"""
import csv
import hashlib
import os
import subprocess
import sys

from absl import app
from absl import flags

from univision.core import config_parsing
from univision.core import machine
from univision.quantization import evaluate_tflite
from univision.quantization import ptq
from univision.serving import tflite

RUN_COLUMNS = ('run', 'float_top1', 'ptq_top1', 'agreement', 'sha256')
ESTIMATOR_COLUMNS = ('outlier_image', 'estimator', 'percentile', 'top1',
                     'agreement')
# (estimator, percentile) pairs compared; the percentile is ignored by
# minmax and batch_mean.
ESTIMATOR_SETTINGS = (('minmax', 100.0), ('batch_mean', 100.0),
                      ('percentile', 99.99), ('image_percentile', 99.9),
                      ('image_percentile', 99.0))
MAX_POINTS = 1.0
MIN_AGREEMENT = 0.97


_EXPORT_PY = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
        __file__)))), 'export.py')


def export_command(experiment: str, config_files: list[str],
                   checkpoint_path: str, tflite_path: str) -> list[str]:
  """The `export.py --quant_type=ptq` arguments (default calibration)."""
  return [f'--experiment={experiment}',
          *(f'--config_file={f}' for f in config_files),
          f'--checkpoint_path={checkpoint_path}',
          f'--export_dir={tflite_path}.export', f'--tflite_path={tflite_path}',
          '--quant_type=ptq']


def sha256(path: str) -> str:
  with open(path, 'rb') as f:
    return hashlib.sha256(f.read()).hexdigest()


def repeated_runs(params, command: list[str], path: str, runs: int,
                  float_path: str) -> list[dict]:
  """`runs` fresh-process PTQ exports, each against the float model.

  Args:
    params: The experiment (its `validation_data` is evaluated).
    command: `export_command` arguments, writing `path`.
    path: The int8 model the command writes (each run overwrites it).
    runs: How many runs.
    float_path: The float TFLite model.

  Raises:
    RuntimeError: with the end of its error output, if an export fails.
  """
  images, labels = evaluate_tflite.validation_examples(params)
  reference = (float_path, evaluate_tflite.predict(
      evaluate_tflite.TFLiteClassifier(float_path), images))
  rows = []
  for run in range(1, runs + 1):
    done = subprocess.run([sys.executable, _EXPORT_PY, *command],
                          capture_output=True, text=True, check=False)
    if done.returncode:
      raise RuntimeError(f'PTQ run {run} failed:\n{done.stderr[-3000:]}')
    ref, got = evaluate_tflite.compare_predictions(
        [reference, (path, evaluate_tflite.predict(
            evaluate_tflite.TFLiteClassifier(path), images))], labels)
    rows.append(dict(run=run, float_top1=ref.top1, ptq_top1=got.top1,
                     agreement=got.agreement, sha256=sha256(path)))
    print(f'run {run}: float {100 * ref.top1:.2f}%, PTQ '
          f'{100 * got.top1:.2f}%, agreement {100 * got.agreement:.2f}%',
          flush=True)
  return rows


def estimator_rows(params, checkpoint_path: str, held_out: str,
                   float_path: str, work_dir: str, outlier_gain: float,
                   max_examples: int,
                   settings=ESTIMATOR_SETTINGS) -> list[dict]:
  """Each (estimator, percentile) of `settings`, without and with one
  planted outlier image (the last batch's first, times `outlier_gain`)."""
  task, model = tflite.restored_model(params, checkpoint_path)
  batches = ptq.calibration_batches(params, task, ptq.Calibration())
  held = params.replace(task={'validation_data': {'input_path': held_out}})
  images, labels = evaluate_tflite.validation_examples(held, max_examples)
  reference = (float_path, evaluate_tflite.predict(
      evaluate_tflite.TFLiteClassifier(float_path), images))
  size = tuple(params.task.model.input_size[:2])
  rows = []
  for outlier in (False, True):
    calibration_images = [b.copy() for b in batches]
    if outlier:
      calibration_images[-1][0] *= outlier_gain
    for estimator, percentile in settings:
      path = os.path.join(work_dir, f'{estimator}_{percentile:g}_{outlier:d}'
                          '.tflite')
      with open(path, 'wb') as f:
        f.write(ptq.quantize(model, size, calibration_images, ptq.Calibration(
            estimator=estimator, percentile=percentile)))
      _, got = evaluate_tflite.compare_predictions(
          [reference, (path, evaluate_tflite.predict(
              evaluate_tflite.TFLiteClassifier(path), images))], labels)
      rows.append(dict(outlier_image=outlier, estimator=estimator,
                       percentile=percentile, top1=got.top1,
                       agreement=got.agreement))
  return rows


def write_csv(path: str, columns, rows: list[dict]) -> None:
  with open(path, 'w', newline='') as f:
    writer = csv.DictWriter(f, columns)
    writer.writeheader()
    writer.writerows(rows)


def summary(runs: list[dict], estimators: list[dict], command: list[str],
            held_out: str, outlier_gain: float, cpu: str) -> str:
  """summary.md: the repeated runs, the targets and the estimators."""
  gaps = [100 * (r['float_top1'] - r['ptq_top1']) for r in runs]
  within = sum(abs(g) <= MAX_POINTS for g in gaps)
  agreeing = sum(r['agreement'] >= MIN_AGREEMENT for r in runs)
  hashes = sorted({r['sha256'] for r in runs})
  identical = ('identical in every run' if len(hashes) == 1
               else f'{len(hashes)} different files')
  lines = [
      '# Post-training int8: repeated runs and calibration estimators', '',
      'Written by `python -m univision.serving.ptq_report` '
      f'(CPU: {cpu}).', '',
      '## The identical command, run again', '',
      '`' + ' '.join(['python export.py', *command]) + '`, each run in a fresh '
      'process; top-1 on the experiment\'s validation data, agreement = '
      'same top-1 class as the float TFLite model.', '',
      '| run | float top-1 | PTQ int8 top-1 | agreement |',
      '|---:|---:|---:|---:|']
  lines += [f'| {r["run"]} | {100 * r["float_top1"]:.2f}% | '
            f'{100 * r["ptq_top1"]:.2f}% | {100 * r["agreement"]:.2f}% |'
            for r in runs]
  lines += [
      '', f'Bytes: {identical} (sha256 {", ".join(h[:16] for h in hashes)}).',
      '',
      '## Targets (issue #24)', '',
      f'- PTQ int8 top-1 within {MAX_POINTS:g} point of float: '
      f'{_met(within == len(runs))}, {within} of {len(runs)} runs (float - '
      f'PTQ: {", ".join(f"{g:+.2f}" for g in gaps)} points).',
      f'- Agreement with float >= {100 * MIN_AGREEMENT:g}%: '
      f'{_met(agreeing == len(runs))}, {agreeing} of {len(runs)} runs.', '',
      '## Estimators', '',
      f'Calibrated on the default images, as they are and with one image '
      f'made {outlier_gain:g}x brighter (a planted outlier); top-1 and '
      f'agreement with float on `{held_out}` (neither calibrated on nor '
      'evaluated above; the default estimator was chosen here).', '',
      '| outlier image | estimator | percentile | top-1 | agreement |',
      '|---|---|---:|---:|---:|']
  lines += [f'| {"yes" if r["outlier_image"] else "no"} | {r["estimator"]} | '
            f'{r["percentile"]:g} | {100 * r["top1"]:.2f}% | '
            f'{100 * r["agreement"]:.2f}% |' for r in estimators]
  return '\n'.join(lines) + '\n'


def _met(ok: bool) -> str:
  return '**met**' if ok else '**missed**'


def _define_flags() -> None:
  flags.DEFINE_string('experiment', None, 'A float classifier experiment.')
  flags.DEFINE_multi_string('config_file', [], 'YAML overrides, in order.')
  flags.DEFINE_string('checkpoint_path', None, 'The float checkpoint.')
  flags.DEFINE_string('output_dir', None, 'Where the CSVs and summary go.')
  flags.DEFINE_string('work_dir', '/tmp/ptq_report', 'Where TFLite files go.')
  flags.DEFINE_string('held_out', None, 'TFRecords the estimators are '
                      'compared on (not the evaluated split).')
  flags.DEFINE_integer('runs', 5, 'Repetitions of the export command.')
  flags.DEFINE_float('outlier_gain', 20.0, 'Brightness of the planted image.')
  flags.DEFINE_integer('max_held_out', 3000, 'Held-out images evaluated.')


def main(_):
  from univision import registry_imports  # pylint: disable=g-import-not-at-top,unused-import
  args = flags.FLAGS
  os.makedirs(args.output_dir, exist_ok=True)
  os.makedirs(args.work_dir, exist_ok=True)
  params = config_parsing.parse_experiment(args.experiment, args.config_file,
                                           '')
  float_path = tflite.export_tflite(
      args.experiment, args.config_file, '', args.checkpoint_path,
      os.path.join(args.work_dir, 'float_export'),
      os.path.join(args.work_dir, 'float.tflite'))
  path = os.path.join(args.work_dir, 'ptq.tflite')
  command = export_command(args.experiment, args.config_file,
                           args.checkpoint_path, path)
  runs = repeated_runs(params, command, path, args.runs, float_path)
  write_csv(os.path.join(args.output_dir, 'runs.csv'), RUN_COLUMNS, runs)
  estimators = estimator_rows(params, args.checkpoint_path, args.held_out,
                              float_path, args.work_dir, args.outlier_gain,
                              args.max_held_out)
  write_csv(os.path.join(args.output_dir, 'estimators.csv'),
            ESTIMATOR_COLUMNS, estimators)
  text = summary(runs, estimators, command, args.held_out,
                 args.outlier_gain, machine.cpu_description())
  with open(os.path.join(args.output_dir, 'summary.md'), 'w') as f:
    f.write(text)
  print(text)


if __name__ == '__main__':
  _define_flags()
  flags.mark_flags_as_required(['experiment', 'checkpoint_path', 'output_dir',
                                'held_out'])
  app.run(main)
