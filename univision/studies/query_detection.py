"""Query-detection study: query head vs the filtered standard head, over seeds.

  python -m univision.studies.query_detection \
    --output_dir=results/query_detection/study \
    --task=data/composites/tops_on_photos --init_checkpoint=runs/demo/ckpt-5000 \
    --setting=film= --setting=concat=task.query.modulation=concat \
    --replicates=3 --steps=1200

Fornoni et al. (arXiv 2106.10258) claim that a detector modulated by the
user's query beats a standard detector whose detections are filtered to the
queried class. One run of `mnv4_query_ssdlite_composites` trains both heads
jointly, so each run gives both numbers (`query_detection_eval`): the
comparison is paired per run. Each setting (a name and Model Garden
overrides, e.g. `task.query.query_weight=2.0`) trains `--replicates` times
with seeds 0, 1, ... (Keras/TF/NumPy seeds and the input pipeline's seed),
all from the same backbone checkpoint on the same schedule.

Outputs in `--output_dir`: `runs.csv` (a row per finished run, appended as
it finishes; a restarted study skips finished runs and resumes an
unfinished one from its checkpoint), `summary.md` (mean and sample standard
deviation per setting, and of the paired difference), `query_ap.png`, and
each run's model folder with its `query_eval/` under `runs/`.
"""
import dataclasses
import gc
import itertools
import os
import statistics
import time

from absl import app
from absl import flags
import tensorflow as tf, tf_keras
from official.core import config_definitions as cfg
from official.core import exp_factory

import univision  # pylint: disable=unused-import  (sets the Keras mode)
from univision.core import config_parsing
from univision.core import training
from univision.evaluation import query_detection_eval
from univision.studies import runs as runs_lib
from univision.studies import schedule

EXPERIMENT = 'mnv4_query_ssdlite_composites'


@dataclasses.dataclass(frozen=True)
class Run:
  """One finished run (a row of `runs.csv`)."""
  setting: str
  seed: int
  query_head: float  # Query-AP of the query head.
  filtered: float  # Query-AP of the standard head filtered to the query.
  steps: int
  seconds: float


def parse_setting(text: str) -> tuple[str, str]:
  """'name=overrides' -> (name, overrides); the overrides may be empty."""
  name, sep, overrides = text.partition('=')
  if not sep or not name or '/' in name:
    raise ValueError(f'--setting={text!r}: expected name=overrides (e.g. '
                     'qw2=task.query.query_weight=2.0) with a name without /.')
  return name, overrides


def run_config(task_folder: str, init_checkpoint: str, steps: int, seed: int,
               overrides: str = '') -> cfg.ExperimentConfig:
  """The experiment config of one run (schedule scaled to `steps`)."""
  for split in ('train', 'val'):
    if not tf.io.gfile.glob(os.path.join(task_folder, f'{split}-*')):
      raise ValueError(f'--task: {task_folder} has no {split}-* TFRecords.')
  params = exp_factory.get_exp_config(EXPERIMENT)
  params.override({
      'task': {
          'init_checkpoint': init_checkpoint,
          'init_checkpoint_modules': 'backbone',
          'train_data': {'input_path': os.path.join(task_folder, 'train-*'),
                         'seed': seed},
          'validation_data': {'input_path': os.path.join(task_folder,
                                                         'val-*')},
      },
      'trainer': schedule.trainer_override(steps, validation_steps=-1),
  })
  if overrides:
    params = config_parsing.apply_override(params, overrides)
  params.validate()
  return params


def open_log(path: str) -> runs_lib.RunLog:
  """The study's `runs.csv`: a `Run` per finished (setting, seed)."""
  return runs_lib.RunLog(path, runs_lib.columns_of(Run),
                         key=('setting', 'seed'))


def read_runs(path: str) -> list[Run]:
  """The finished runs of `runs.csv` (none if the file does not exist)."""
  return [Run(**row) for row in open_log(path).rows()]


def _mean_sd(values: list[float]) -> str:
  mean = round(statistics.mean(values), 3) + 0.0  # No '-0.000'.
  if len(values) < 2:
    return f'{mean:.3f}'
  return f'{mean:.3f} ± {statistics.stdev(values):.3f}'


def summary_markdown(runs: list[Run]) -> str:
  """Per setting: both heads' query-AP and their paired difference."""
  lines = ['| setting | runs | query head | standard head filtered | '
           'query - filtered | query head better in |',
           '|---|---:|---:|---:|---:|---:|']
  for setting in dict.fromkeys(r.setting for r in runs):
    rows = [r for r in runs if r.setting == setting]
    gains = [r.query_head - r.filtered for r in rows]
    lines.append(
        f'| {setting} | {len(rows)} | '
        f'{_mean_sd([r.query_head for r in rows])} | '
        f'{_mean_sd([r.filtered for r in rows])} | {_mean_sd(gains)} | '
        f'{sum(g > 0 for g in gains)} of {len(rows)} |')
  lines.append('')
  lines.append('Mean ± sample standard deviation over seeds; the difference '
               'is paired (both heads come from the same run).')
  return '\n'.join(lines) + '\n'


def plot(runs: list[Run], path: str) -> None:
  """Both heads' query-AP per setting, one point per run."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  settings = list(dict.fromkeys(r.setting for r in runs))
  figure, axes = pyplot.subplots(figsize=(1.6 * len(settings) + 3, 4))
  for offset, (field, label, color) in zip(
      (-0.12, 0.12), (('query_head', 'query head', 'tab:red'),
                      ('filtered', 'standard head filtered', 'tab:blue'))):
    xs, ys = [], []
    for i, setting in enumerate(settings):
      for r in runs:
        if r.setting == setting:
          xs.append(i + offset)
          ys.append(getattr(r, field))
    axes.scatter(xs, ys, color=color, label=label, s=18)
  for r in runs:
    i = settings.index(r.setting)
    axes.plot([i - 0.12, i + 0.12], [r.query_head, r.filtered],
              color='gray', lw=0.6)
  axes.set_xticks(range(len(settings)), settings)
  axes.set_ylabel('query-AP')
  axes.legend(fontsize=8)
  axes.set_title('Query head vs standard head filtered to the query '
                 '(lines pair one run)', fontsize=9)
  figure.tight_layout()
  figure.savefig(path, dpi=110)
  pyplot.close(figure)


def _seed(seed: int) -> None:
  tf_keras.backend.clear_session()
  tf_keras.utils.set_random_seed(seed)
  gc.collect()


def study(output_dir: str, task_folder: str, init_checkpoint: str,
          settings: list[str], replicates: int, steps: int) -> list[Run]:
  """Trains and evaluates every (setting, seed) not yet in `runs.csv`."""
  parsed = [parse_setting(s) for s in settings]
  os.makedirs(output_dir, exist_ok=True)
  log = open_log(os.path.join(output_dir, 'runs.csv'))
  done = log.done()
  planned = set(itertools.product(dict(parsed), range(replicates)))
  progress = runs_lib.RunProgress(len(planned), len(planned & done))
  for name, overrides in parsed:
    for seed in range(replicates):
      if (name, seed) in done:
        continue
      params = run_config(task_folder, init_checkpoint, steps, seed,
                          overrides)
      model_dir = os.path.join(output_dir, 'runs', name, f'seed{seed}')
      _seed(seed)
      start = time.time()
      training.run(params, model_dir, mode='train')
      seconds = time.time() - start
      results = query_detection_eval.evaluate(
          params, model_dir, os.path.join(model_dir, 'query_eval'))
      run = Run(name, seed, results['query_pass']['query_AP'],
                results['standard_filtered']['query_AP'], steps,
                round(seconds, 1))
      log.append(run)
      progress.finish(f'{name} seed {seed}', {
          'query-AP': run.query_head, 'filtered': run.filtered})
      _seed(seed)
  runs = [r for r in read_runs(log.path)
          if r.setting in dict(parsed) and r.seed < replicates]
  with open(os.path.join(output_dir, 'summary.md'), 'w') as f:
    f.write(summary_markdown(runs))
  plot(runs, os.path.join(output_dir, 'query_ap.png'))
  return runs


def _define_flags() -> None:
  flags.DEFINE_string('output_dir', None, 'Where the study writes.')
  flags.DEFINE_string('task', None, 'Detection TFRecord folder (train-*, '
                      'val-*, label_map.json).')
  flags.DEFINE_string('init_checkpoint', None, 'Backbone checkpoint.')
  flags.DEFINE_multi_string('setting', ['film='], 'name=overrides, repeated.')
  flags.DEFINE_integer('replicates', 3, 'Seeds per setting.')
  flags.DEFINE_integer('steps', 1200, 'Training steps per run.')
  flags.mark_flags_as_required(['output_dir', 'task', 'init_checkpoint'])


def main(_):
  # The program entry point registers the experiments.
  from univision import registry_imports  # pylint: disable=g-import-not-at-top,unused-import
  f = flags.FLAGS
  runs = study(f.output_dir, f.task, f.init_checkpoint, f.setting,
               f.replicates, f.steps)
  print(summary_markdown(runs))


if __name__ == '__main__':
  _define_flags()
  app.run(main)
