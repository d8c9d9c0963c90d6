"""Label-granularity study (issue #21): does the training label level or the
WSOL method move localization more?

  python -m univision.studies.label_granularity \
    --output_dir=results/label_granularity --data=data/wsol_parts \
    [--levels=marked,shape,family] [--methods=cam,has,adl,cutmix] \
    [--seeds=0,1,2] [--steps=3000] [--fractions=0.1,0.3]

Cole et al. (iNatLoc500, ECCV 2022) find that the granularity of the
training labels moves weakly supervised localization more than the choice
of WSOL method, and improves data efficiency. The study trains
`mnv4_wsol_parts` (finest labels decided by a small marker, CAM at stride
8, random start) once per (level, method, seed) under Choe et al.'s
protocol (CVPR 2020):

1. Search on val: for each (level, method), every candidate of
   `CANDIDATES[method]` (learning rate or the method's own settings) is
   trained with seed 0 and evaluated on `val-*`; the best val MaxBoxAccV2
   is chosen (`search.csv`).
2. Final runs: the chosen candidate with every seed (seed 0 is the search
   run itself); each is evaluated on val, whose best CAM threshold then
   fixes GT-known and Top-1 Loc when the run is evaluated once on
   `test-*` (`runs.csv`, `fraction` 1).
3. Data efficiency: the best and the worst level by val (each with its
   best method by val) retrain on the first `--fractions` of the training
   images (nested subsets written under `data/`), every seed.

Outputs in `--output_dir`: `search.csv`, `runs.csv` (a row per finished
(level, method, seed, fraction), appended as it finishes; a restarted study
skips finished rows and resumes an unfinished run from its checkpoint),
`summary.md` (`label_granularity_report`), `localization.png`, `cams.png`
(the same test images' CAMs at every level, for each level's best method)
and each run's model folder under `runs/`.
"""
import dataclasses
import os
from typing import Sequence

from absl import app
from absl import flags
import tensorflow as tf, tf_keras
from official.core import config_definitions as cfg
from official.core import exp_factory
from official.core import task_factory

import univision  # pylint: disable=unused-import  (sets the Keras mode)
from univision.configs import wsol as wsol_cfg
from univision.core import checkpoints
from univision.core import config_parsing
from univision.core import run_clock
from univision.core import training
from univision.data import label_hierarchy
from univision.evaluation import wsol_metrics
from univision.studies import code_guard
from univision.studies import label_granularity_report as report
from univision.studies import runs as runs_lib
from univision.studies import schedule

EXPERIMENT = 'mnv4_wsol_parts'
METRICS = ('accuracy', 'MaxBoxAccV2', 'MaxBoxAccV2/IoU30',
           'MaxBoxAccV2/IoU50', 'MaxBoxAccV2/IoU70', 'MaxBoxAccV1',
           'GT-known Loc', 'Top-1 Loc', 'PxAP', 'part_cam_mass', 'part_area',
           'best_threshold')
# Metrics a split without masks or part masks does not report.
OPTIONAL = ('PxAP', 'part_cam_mass', 'part_area')
SEARCH_COLUMNS = {'level': str, 'method': str, 'candidate': str,
                  **dict.fromkeys(METRICS, float), 'steps': int,
                  'seconds': float}
RUN_COLUMNS = {'level': str, 'method': str, 'seed': int, 'fraction': float,
               'candidate': str, **dict.fromkeys(METRICS, float),
               'val_MaxBoxAccV2': float, 'threshold': float, 'steps': int,
               'seconds': float}
_LR = 'trainer.optimizer_config.learning_rate.cosine.initial_learning_rate'
_HAS = 'task.hide_and_seek'
_ADL = 'task.adl'
# Per method: candidate name -> its overrides. Small grids over what Choe
# et al. tune (learning rate; the method's own settings).
CANDIDATES = {
    'cam': {'lr0.002': f'{_LR}=0.002', 'lr0.005': f'{_LR}=0.005'},
    'has': {
        'grid16_p0.5': f'{_HAS}.grid_size=16,{_HAS}.hide_probability=0.5',
        'grid32_p0.5': f'{_HAS}.grid_size=32,{_HAS}.hide_probability=0.5',
        'grid16_p0.33': f'{_HAS}.grid_size=16,{_HAS}.hide_probability=0.33'},
    'adl': {'drop0.75_thr0.9': f'{_ADL}.drop_rate=0.75,{_ADL}.threshold=0.9',
            'drop0.5_thr0.8': f'{_ADL}.drop_rate=0.5,{_ADL}.threshold=0.8',
            'drop0.75_thr0.8': f'{_ADL}.drop_rate=0.75,{_ADL}.threshold=0.8'},
    'cutmix': {'beta1_p1': 'task.cutmix.beta=1.0,task.cutmix.probability=1.0',
               'beta1_p0.5':
                   'task.cutmix.beta=1.0,task.cutmix.probability=0.5'},
}
SPLITS = ('train', 'val', 'test')


@dataclasses.dataclass(frozen=True)
class Plan:
  """What the study trains."""
  levels: Sequence[str]
  methods: Sequence[str]
  seeds: Sequence[int] = (0, 1, 2)
  steps: int = 3000
  fractions: Sequence[float] = (0.1, 0.3)
  overrides: str = ''  # For every run (e.g. a smaller input).


def run_config(data: str, level: str, method: str, steps: int, seed: int,
               overrides: str = '', train_path: str | None = None
               ) -> cfg.ExperimentConfig:
  """One run's config: train on `train-*` (or `train_path`), validate on val.

  Raises:
    ValueError: naming the folder for a missing split or hierarchy, or the
      key of a bad override.
  """
  for split in SPLITS:
    if not tf.io.gfile.glob(os.path.join(data, f'{split}-*')):
      raise ValueError(f'--data: {data} has no {split}-* TFRecords.')
  hierarchy = os.path.join(data, 'hierarchy.json')
  num_classes = label_hierarchy.load(hierarchy).num_classes(level)
  params = exp_factory.get_exp_config(EXPERIMENT)
  params.override({
      'task': {
          'label_level': level, 'method': method,
          'hierarchy_path': hierarchy,
          'model': {'num_classes': num_classes},
          'train_data': {'input_path': train_path or os.path.join(
              data, 'train-*'), 'seed': seed},
          'validation_data': {'input_path': os.path.join(data, 'val-*')},
      },
      'trainer': schedule.trainer_override(
          steps, checkpoints=3, warmup_steps=max(1, steps // 20)),
  })
  if overrides:
    params = config_parsing.apply_override(params, overrides)
  params.validate()
  return params


def _metrics(metrics: dict[str, float], where: str) -> dict[str, float]:
  missing = [m for m in METRICS if m not in metrics and m not in OPTIONAL]
  if missing:
    raise RuntimeError(f'{where}: the evaluation did not report {missing}.')
  return {m: metrics.get(m) for m in METRICS}


def _train(params: cfg.ExperimentConfig, model_dir: str,
           seed: int) -> tuple[dict[str, float], float]:
  """Trains (or resumes) a run; its val metrics and training seconds."""
  tf_keras.backend.clear_session()
  tf_keras.utils.set_random_seed(seed)
  _, metrics = training.run(params, model_dir)
  seconds = run_clock.read(model_dir)
  if 'MaxBoxAccV2' not in metrics:  # Finished before: evaluate again.
    _, metrics = training.run(params, model_dir, mode='eval')
  return _metrics(metrics, model_dir), seconds


def evaluate_test(params: cfg.ExperimentConfig, data: str, model_dir: str,
                  threshold: float) -> dict[str, float]:
  """A run's test metrics, GT-known / Top-1 Loc at the val threshold."""
  tf_keras.backend.clear_session()
  evaluation = params.replace(
      task={'validation_data': {'input_path': os.path.join(data, 'test-*')},
            'evaluation': {'gt_known_threshold': threshold}},
      trainer={'validation_steps': -1, 'validation_summary_subdir': 'test'})
  _, metrics = training.run(evaluation, model_dir, mode='eval')
  return _metrics(metrics, model_dir)


def subset(data: str, fraction: float, output_dir: str) -> str:
  """The first `fraction` of the training records, written once; its glob.

  The records are in random order, so the first ones are a random subset,
  and a smaller fraction's subset lies inside a larger one's.
  """
  folder = os.path.join(output_dir, 'data', f'train_{fraction:g}')
  path = os.path.join(folder, 'train-00000-of-00001.tfrecord')
  if not tf.io.gfile.exists(path):
    records = [r.numpy() for r in tf.data.TFRecordDataset(
        sorted(tf.io.gfile.glob(os.path.join(data, 'train-*'))))]
    keep = max(1, round(fraction * len(records)))
    os.makedirs(folder, exist_ok=True)
    with tf.io.TFRecordWriter(path + '.partial') as writer:
      for record in records[:keep]:
        writer.write(record)
    os.replace(path + '.partial', path)  # A killed write leaves no subset.
  return os.path.join(folder, 'train-*')


def cam_rows(params: cfg.ExperimentConfig, data: str, model_dir: str,
             threshold: float, num_images: int) -> list[tuple]:
  """(image, CAM, GT box, predicted box) on the first test images of a run."""
  task = task_factory.get_task(params.task)
  model = task.build_model()
  model(tf.zeros([1, *params.task.model.input_size]), training=False)
  tf.train.Checkpoint(model=model).read(checkpoints.resolve_checkpoint(
      model_dir)).expect_partial().assert_existing_objects_matched()
  split = params.task.validation_data.replace(
      input_path=os.path.join(data, 'test-*'), global_batch_size=num_images)
  images, labels = next(iter(task.build_inputs(split)))
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
                  'ground truth, red: largest-contour box at the val '
                  'threshold', fontsize=8)
  figure.tight_layout()
  figure.savefig(path, dpi=100)
  pyplot.close(figure)




class _Study:
  """One study folder: its logs, progress and the runs still to do."""

  def __init__(self, output_dir: str, data: str, plan: Plan):
    self.output_dir, self.data, self.plan = output_dir, data, plan
    self.search = runs_lib.RunLog(os.path.join(output_dir, 'search.csv'),
                                  SEARCH_COLUMNS,
                                  key=('level', 'method', 'candidate'))
    self.log = open_log(os.path.join(output_dir, 'runs.csv'))
    planned = (sum(len(CANDIDATES[m]) for m in plan.methods) *
               len(plan.levels) +
               len(plan.levels) * len(plan.methods) * len(plan.seeds) +
               2 * len(plan.fractions) * len(plan.seeds))
    done = len(self.search.done()) + len(self.log.done())
    self.progress = runs_lib.RunProgress(planned, done)
    self.code = code_guard.CodeGuard()

  def model_dir(self, level: str, method: str, candidate: str, seed: int,
                fraction: float = 1.0) -> str:
    name = f'{level}_{method}_{candidate}'
    if fraction != 1.0:
      name += f'_train{fraction:g}'
    return os.path.join(self.output_dir, 'runs', name, f'seed{seed}')

  def config(self, level: str, method: str, candidate: str, seed: int,
             train_path: str | None = None) -> cfg.ExperimentConfig:
    overrides = ','.join(o for o in (CANDIDATES[method][candidate],
                                     self.plan.overrides) if o)
    return run_config(self.data, level, method, self.plan.steps, seed,
                      overrides, train_path)

  def searched(self, level: str, method: str) -> str:
    """Trains the (level, method)'s candidates; the one chosen on val."""
    done = self.search.done()
    for candidate in CANDIDATES[method]:
      if (level, method, candidate) in done:
        continue
      params = self.config(level, method, candidate, 0)
      self.code.check(f'search {level}/{method}/{candidate}')
      val, seconds = _train(params, self.model_dir(level, method, candidate,
                                                   0), 0)
      self.search.append({'level': level, 'method': method,
                          'candidate': candidate, **val,
                          'steps': self.plan.steps, 'seconds': seconds})
      self.progress.finish(f'search {level}/{method}/{candidate}',
                           {'val MaxBoxAccV2': val['MaxBoxAccV2']})
    rows = [r for r in self.search.rows()
            if (r['level'], r['method']) == (level, method)]
    return max(rows, key=lambda r: r['MaxBoxAccV2'])['candidate']

  def final(self, level: str, method: str, candidate: str, seed: int,
            fraction: float = 1.0) -> None:
    """Trains one final run (seed 0 at full data: the search run), tests."""
    if (level, method, seed, fraction) in self.log.done():
      return
    train_path = (None if fraction == 1.0 else
                  subset(self.data, fraction, self.output_dir))
    params = self.config(level, method, candidate, seed, train_path)
    model_dir = self.model_dir(level, method, candidate, seed, fraction)
    searched = [r for r in self.search.rows()
                if (r['level'], r['method'], r['candidate']) ==
                (level, method, candidate)]
    if seed == 0 and fraction == 1.0 and searched:
      val, seconds = ({m: searched[0][m] for m in METRICS},
                      searched[0]['seconds'])
    else:
      self.code.check(f'{level}/{method} seed {seed}')
      val, seconds = _train(params, model_dir, seed)
    self.code.check(f'testing {level}/{method} seed {seed}')
    test = evaluate_test(params, self.data, model_dir, val['best_threshold'])
    self.log.append({'level': level, 'method': method, 'seed': seed,
                     'fraction': fraction, 'candidate': candidate, **test,
                     'val_MaxBoxAccV2': val['MaxBoxAccV2'],
                     'threshold': val['best_threshold'],
                     'steps': self.plan.steps, 'seconds': seconds})
    self.progress.finish(
        f'{level}/{method} seed {seed} fraction {fraction:g}',
        {'MaxBoxAccV2': test['MaxBoxAccV2']})


def open_log(path: str) -> runs_lib.RunLog:
  """The study's `runs.csv`: a row per (level, method, seed, fraction)."""
  return runs_lib.RunLog(path, RUN_COLUMNS,
                         key=('level', 'method', 'seed', 'fraction'))


def read_runs(path: str) -> list[dict]:
  """The finished runs of `runs.csv` (none if it does not exist)."""
  return open_log(path).rows()


def write_report(output_dir: str, plan: Plan) -> list[dict]:
  """`summary.md` and `localization.png` from the logs (also mid-study)."""
  search = runs_lib.RunLog(os.path.join(output_dir, 'search.csv'),
                           SEARCH_COLUMNS,
                           key=('level', 'method', 'candidate')).rows()
  runs = [r for r in read_runs(os.path.join(output_dir, 'runs.csv'))
          if r['level'] in plan.levels and r['method'] in plan.methods and
          r['seed'] in plan.seeds]
  chosen = {}
  for level in plan.levels:
    for method in plan.methods:
      rows = [r for r in search if (r['level'], r['method']) == (level,
                                                                   method)]
      if len(rows) == len(CANDIDATES[method]):
        chosen[(level, method)] = max(
            rows, key=lambda r: r['MaxBoxAccV2'])['candidate']
  have = {(r['level'], r['method'], r['seed']) for r in runs
          if r['fraction'] == 1.0}
  missing = [f'{l}/{m}/seed {s}' for s in plan.seeds for l in plan.levels
             for m in plan.methods if (l, m, s) not in have]
  with open(os.path.join(output_dir, 'summary.md'), 'w') as f:
    f.write(report.summary_markdown(runs, search, chosen, missing))
  report.plot(runs, os.path.join(output_dir, 'localization.png'))
  return runs


def _check(plan: Plan, data: str) -> None:
  hierarchy = label_hierarchy.load(os.path.join(data, 'hierarchy.json'))
  for level in plan.levels:
    hierarchy.num_classes(level)  # Names the level if unknown.
  for method in plan.methods:
    if method not in wsol_cfg.METHODS or method not in CANDIDATES:
      raise ValueError(f'--methods: {method!r} is not one of '
                       f'{sorted(CANDIDATES)}.')
  if plan.steps < 1 or not plan.seeds:
    raise ValueError(f'--steps {plan.steps}, --seeds {list(plan.seeds)}: '
                     'need at least one step and one seed.')
  if any(not 0 < f < 1 for f in plan.fractions):
    raise ValueError(f'--fractions {list(plan.fractions)}: each must be in '
                     '(0, 1).')


def study(output_dir: str, data: str, plan: Plan,
          num_overlay_images: int = 6) -> list[dict]:
  """Runs every step of the protocol not yet logged; writes the report."""
  _check(plan, data)
  os.makedirs(output_dir, exist_ok=True)
  state = _Study(output_dir, data, plan)
  chosen = {}
  for seed in plan.seeds:  # Seed by seed: a study cut short has whole seeds.
    for level in plan.levels:
      for method in plan.methods:
        if (level, method) not in chosen:
          chosen[(level, method)] = state.searched(level, method)
        state.final(level, method, chosen[(level, method)], seed)
  runs = [r for r in state.log.rows() if r['level'] in plan.levels and
          r['method'] in plan.methods and r['seed'] in plan.seeds]
  if plan.fractions and len(plan.levels) > 1:
    by_val = report.means(runs, 'val_MaxBoxAccV2')
    best_method = {level: max((m for m in plan.methods),
                              key=lambda m, l=level: by_val[(l, m)])
                   for level in plan.levels}
    ranked = sorted(plan.levels,
                    key=lambda l: by_val[(l, best_method[l])])
    for level in (ranked[-1], ranked[0]):
      for fraction in plan.fractions:
        for seed in plan.seeds:
          state.final(level, best_method[level],
                      chosen[(level, best_method[level])], seed, fraction)
  runs = write_report(output_dir, plan)
  overlays = {}
  for level in plan.levels:
    means = report.means(runs, 'val_MaxBoxAccV2')
    method = max(plan.methods, key=lambda m, l=level: means[(l, m)])
    row = next(r for r in runs if (r['level'], r['method'], r['seed'],
                                   r['fraction']) == (level, method, 0, 1.0))
    overlays[f'{level} / {method}'] = cam_rows(
        state.config(level, method, row['candidate'], 0), data,
        state.model_dir(level, method, row['candidate'], 0),
        row['threshold'], num_overlay_images)
  plot_cams(overlays, os.path.join(output_dir, 'cams.png'))
  return runs


def _define_flags() -> None:
  flags.DEFINE_string('output_dir', None, 'Where the study writes.')
  flags.DEFINE_string('data', 'data/wsol_parts',
                      'WSOL TFRecords (train-*, val-*, test-*, '
                      'hierarchy.json).')
  flags.DEFINE_list('levels', ['marked', 'shape', 'family'], 'Label levels.')
  flags.DEFINE_list('methods', ['cam', 'has', 'adl', 'cutmix'],
                    'WSOL methods.')
  flags.DEFINE_list('seeds', ['0', '1', '2'], 'Seeds of every final run.')
  flags.DEFINE_integer('steps', 3000, 'Training steps per run.')
  flags.DEFINE_list('fractions', ['0.1', '0.3'],
                    'Training-image fractions of the data-efficiency runs.')
  flags.DEFINE_string('params_override', '', 'Overrides for every run.')
  flags.mark_flags_as_required(['output_dir'])


def main(_):
  # The program entry point registers the experiments.
  from univision import registry_imports  # pylint: disable=g-import-not-at-top,unused-import
  f = flags.FLAGS
  plan = Plan(f.levels, f.methods, [int(s) for s in f.seeds], f.steps,
              [float(x) for x in f.fractions], f.params_override)
  runs = study(f.output_dir, f.data, plan)
  print(f'{len(runs)} runs; {os.path.join(f.output_dir, "summary.md")}')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
