"""Label-granularity study: which training labels localize best (WSOL)?

  python -m univision.studies.label_granularity \
    --output_dir=results/label_granularity --data=data/wsol_composites \
    --init_checkpoint=runs/demo/ckpt-5000 --levels=fine,coarse \
    --methods=cam,has,adl --steps=1500

Cole et al. (ECCV 2022) find that the granularity of the training labels
matters more for weakly supervised localization than the WSOL method. This
study trains `mnv4_wsol_composites` once per (label level, method, seed) on
the same images, schedule and backbone checkpoint, and evaluates every run
on the same boxes and masks of the `test` split: accuracy at the run's own
level, MaxBoxAccV2 (IoU 30/50/70), MaxBoxAccV1, GT-known and Top-1 Loc at
the set's best threshold, and PxAP.

Outputs in `--output_dir`: `runs.csv` (a row per finished run, appended as
it finishes; a restarted study skips finished runs and resumes an
unfinished one from its checkpoint), `summary.md`, `localization.png`
(MaxBoxAccV2 and PxAP per method and level), `cams.png` (CAM overlays on
the same test images for every run: ground-truth box green, the box of the
largest contour at the run's best threshold red) and each run's model
folder under `runs/`.
"""
import itertools
import os
import statistics
import time

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf, tf_keras
from official.core import config_definitions as cfg
from official.core import exp_factory
from official.core import task_factory

import univision  # pylint: disable=unused-import  (sets the Keras mode)
from univision.configs import wsol as wsol_cfg
from univision.core import checkpoints
from univision.core import config_parsing
from univision.core import training
from univision.data import label_hierarchy
from univision.evaluation import wsol_metrics
from univision.studies import runs as runs_lib
from univision.studies import schedule

METRICS = ('accuracy', 'MaxBoxAccV2', 'MaxBoxAccV2/IoU30',
           'MaxBoxAccV2/IoU50', 'MaxBoxAccV2/IoU70', 'MaxBoxAccV1',
           'GT-known Loc', 'Top-1 Loc', 'PxAP', 'best_threshold')
COLUMNS = {'level': str, 'method': str, 'seed': int,
           **dict.fromkeys(METRICS, float), 'steps': int, 'seconds': float}


def run_config(data: str, level: str, method: str, steps: int, seed: int,
               init_checkpoint: str, overrides: str = ''
               ) -> cfg.ExperimentConfig:
  """The config of one run: train on `train-*`, evaluate on `test-*`."""
  hierarchy = label_hierarchy.load(os.path.join(data, 'hierarchy.json'))
  params = exp_factory.get_exp_config('mnv4_wsol_composites')
  params.override({
      'task': {
          'label_level': level, 'method': method,
          'model': {'num_classes': hierarchy.num_classes(level)},
          'init_checkpoint': init_checkpoint,
          'train_data': {'input_path': os.path.join(data, 'train-*'),
                         'seed': seed},
          'validation_data': {'input_path': os.path.join(data, 'test-*')},
      },
      'trainer': schedule.trainer_override(
          steps, checkpoints=3, warmup_steps=max(1, steps // 15)),
  })
  if overrides:
    params = config_parsing.apply_override(params, overrides)
  params.validate()
  return params


def open_log(path: str) -> runs_lib.RunLog:
  """The study's `runs.csv`: a row per finished (level, method, seed)."""
  return runs_lib.RunLog(path, COLUMNS, key=('level', 'method', 'seed'))


def read_runs(path: str) -> list[dict]:
  """The finished runs of `runs.csv` (none if it does not exist)."""
  return open_log(path).rows()


def _cell(values: list[float]) -> str:
  if len(values) == 1:
    return f'{values[0]:.1f}'
  return f'{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}'


def summary_markdown(runs: list[dict]) -> str:
  """Per (level, method): the metrics, mean ± sd over seeds."""
  shown = ('accuracy', 'MaxBoxAccV2', 'MaxBoxAccV2/IoU50', 'MaxBoxAccV1',
           'GT-known Loc', 'Top-1 Loc', 'PxAP')
  lines = ['| level | method | runs | ' + ' | '.join(shown) + ' |',
           '|---|---|---:|' + '---:|' * len(shown)]
  for key in dict.fromkeys((r['level'], r['method']) for r in runs):
    rows = [r for r in runs if (r['level'], r['method']) == key]
    cells = [_cell([100 * r[m] if m == 'accuracy' else r[m] for r in rows])
             for m in shown]
    lines.append(f'| {key[0]} | {key[1]} | {len(rows)} | '
                 + ' | '.join(cells) + ' |')
  lines.append('')
  lines.append('Percent. Accuracy is at the run\'s own label level; every '
               'localization metric uses the same test boxes (masks for '
               'PxAP). GT-known / Top-1 Loc at the best threshold on the '
               'evaluated set.')
  return '\n'.join(lines) + '\n'


def plot(runs: list[dict], path: str) -> None:
  """MaxBoxAccV2 and PxAP per method, one bar per level (mean over seeds)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  levels = list(dict.fromkeys(r['level'] for r in runs))
  methods = list(dict.fromkeys(r['method'] for r in runs))
  figure, axes = pyplot.subplots(1, 2, figsize=(9, 3.6))
  width = 0.8 / len(levels)
  for ax, metric in zip(axes, ('MaxBoxAccV2', 'PxAP')):
    for i, level in enumerate(levels):
      means = []
      for method in methods:
        values = [r[metric] for r in runs
                  if (r['level'], r['method']) == (level, method)]
        means.append(statistics.mean(values) if values else 0.0)
      ax.bar(np.arange(len(methods)) + i * width, means, width, label=level)
    ax.set_xticks(np.arange(len(methods)) + width * (len(levels) - 1) / 2,
                  methods)
    ax.set_title(metric, fontsize=9)
  axes[0].legend(title='training labels', fontsize=8)
  figure.tight_layout()
  figure.savefig(path, dpi=110)
  pyplot.close(figure)


def cam_rows(params: cfg.ExperimentConfig, model_dir: str, threshold: float,
             num_images: int) -> list[tuple]:
  """(image, CAM, GT box, predicted box) on the first test images of a run."""
  task = task_factory.get_task(params.task)
  model = task.build_model()
  model(tf.zeros([1, *params.task.model.input_size]), training=False)
  tf.train.Checkpoint(model=model).read(checkpoints.resolve_checkpoint(
      model_dir)).expect_partial().assert_existing_objects_matched()
  data = params.task.validation_data.replace(global_batch_size=num_images)
  images, labels = next(iter(task.build_inputs(data)))
  cams = tf.image.resize(model.cams(images, labels['label'])[..., None],
                         params.task.model.input_size[:2])[..., 0].numpy()
  rows = []
  for i, cam in enumerate(cams):
    cam = wsol_metrics.normalize_cam(cam)
    box = wsol_metrics.boxes_from_cam(cam, threshold, multi_contour=False)[0]
    rows.append((images[i].numpy(), cam, labels['boxes'][i][0].numpy(), box))
  return rows


def plot_cams(overlays: dict[str, list[tuple]], path: str) -> None:
  """One row per run, one column per image: CAM over image, boxes."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  columns = max(len(v) for v in overlays.values())
  figure, axes = pyplot.subplots(len(overlays), columns, squeeze=False,
                                 figsize=(1.7 * columns, 1.8 * len(overlays)))
  for row, (name, items) in enumerate(overlays.items()):
    for col, (image, cam, gt, box) in enumerate(items):
      ax = axes[row][col]
      shown = image - image.min()
      ax.imshow(shown / max(shown.max(), 1e-6))
      ax.imshow(cam, cmap='jet', alpha=0.45, vmin=0, vmax=1)
      for (x0, y0, x1, y1), color in ((gt, 'lime'), (box, 'red')):
        ax.add_patch(matplotlib.patches.Rectangle(
            (x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1, fill=False,
            color=color, lw=1))
      ax.axis('off')
    axes[row][0].set_title(name, fontsize=8, loc='left')
  figure.suptitle('CAM of the true class at the training level; green: '
                  'ground truth, red: largest-contour box at the best '
                  'threshold', fontsize=8)
  figure.tight_layout()
  figure.savefig(path, dpi=100)
  pyplot.close(figure)


def _train(params: cfg.ExperimentConfig, model_dir: str, level: str,
           method: str, seed: int, steps: int) -> dict:
  """Trains and evaluates one run; its row of `runs.csv`."""
  tf_keras.backend.clear_session()
  tf_keras.utils.set_random_seed(seed)
  start = time.time()
  _, metrics = training.run(params, model_dir)
  missing = [m for m in METRICS if m not in metrics]
  if missing:
    raise RuntimeError(f'{model_dir}: the evaluation did not report '
                       f'{missing}.')
  return {'level': level, 'method': method, 'seed': seed,
          **{m: metrics[m] for m in METRICS}, 'steps': steps,
          'seconds': round(time.time() - start, 1)}


def study(output_dir: str, data: str, init_checkpoint: str,
          levels: list[str], methods: list[str], steps: int,
          replicates: int = 1, overrides: str = '',
          num_overlay_images: int = 6) -> list[dict]:
  """Trains and evaluates every (level, method, seed) not yet in runs.csv."""
  os.makedirs(output_dir, exist_ok=True)
  log = open_log(os.path.join(output_dir, 'runs.csv'))
  done = log.done()
  planned = set(itertools.product(levels, methods, range(replicates)))
  progress = runs_lib.RunProgress(len(planned), len(planned & done))
  overlays = {}
  for level in levels:
    for method in methods:
      if method not in wsol_cfg.METHODS:
        raise ValueError(f'--methods: {method!r} is not one of '
                         f'{wsol_cfg.METHODS}.')
      for seed in range(replicates):
        params = run_config(data, level, method, steps, seed,
                            init_checkpoint, overrides)
        model_dir = os.path.join(output_dir, 'runs', f'{level}_{method}',
                                 f'seed{seed}')
        if (level, method, seed) not in done:
          row = _train(params, model_dir, level, method, seed, steps)
          log.append(row)
          progress.finish(f'{level}/{method} seed {seed}',
                          {m: row[m] for m in ('MaxBoxAccV2', 'PxAP')})
        if seed == 0:
          row = next(r for r in log.rows()
                     if (r['level'], r['method'], r['seed']) ==
                     (level, method, 0))
          overlays[f'{level} / {method}'] = cam_rows(
              params, model_dir, row['best_threshold'], num_overlay_images)
  runs = [r for r in log.rows() if r['level'] in levels
          and r['method'] in methods and r['seed'] < replicates]
  with open(os.path.join(output_dir, 'summary.md'), 'w') as f:
    f.write(summary_markdown(runs))
  plot(runs, os.path.join(output_dir, 'localization.png'))
  plot_cams(overlays, os.path.join(output_dir, 'cams.png'))
  return runs


def _define_flags() -> None:
  flags.DEFINE_string('output_dir', None, 'Where the study writes.')
  flags.DEFINE_string('data', 'data/wsol_composites',
                      'WSOL TFRecords (train-*, test-*, hierarchy.json).')
  flags.DEFINE_string('init_checkpoint', 'runs/demo/ckpt-5000',
                      'Backbone checkpoint.')
  flags.DEFINE_list('levels', ['fine', 'coarse'], 'Label levels.')
  flags.DEFINE_list('methods', ['cam', 'has', 'adl'], 'WSOL methods.')
  flags.DEFINE_integer('steps', 1500, 'Training steps per run.')
  flags.DEFINE_integer('replicates', 1, 'Seeds per (level, method).')
  flags.DEFINE_string('params_override', '', 'Overrides for every run.')
  flags.mark_flags_as_required(['output_dir'])


def main(_):
  # The program entry point registers the experiments.
  from univision import registry_imports  # pylint: disable=g-import-not-at-top,unused-import
  f = flags.FLAGS
  runs = study(f.output_dir, f.data, f.init_checkpoint, f.levels, f.methods,
               f.steps, f.replicates, f.params_override)
  print(summary_markdown(runs))


if __name__ == '__main__':
  _define_flags()
  app.run(main)
