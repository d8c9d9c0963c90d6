"""Model-patch study: SpotPatch's learned patch vs fixed patches vs fine-tuning.

  python -m univision.studies.model_patches --output_dir=results/model_patches \
    --base_task=data/composites/base_clothing --backbone_checkpoint=runs/demo \
    --tasks=data/composites/tops_on_photos,data/tree_crowns \
    [--seeds=0,1,2] [--steps=400] [--patches=...] [--spot_lambdas=...]

SpotPatch (arXiv 2101.01260) claims that a detector for task k can be a
shared, frozen base plus a small patch learned for the task, whose size
follows the task's difficulty, at an accuracy close to fine-tuning the whole
detector. The study measures that on offline tasks: folders of Model Garden
detection TFRecords `train-*`, `val-*`, `test-*` and a `label_map.json`.

1. The base: RetinaNet (`mnv4_retinanet_composites`) from
   `--base_checkpoint`, or trained here on `--base_task` from
   `--backbone_checkpoint` for `--base_steps`, in chunks of
   `--base_eval_every` steps with its test AP after each chunk
   (`base_curve.csv`), so the summary can say whether it levelled off.
   With `--base_task`, the base's test AP on that task is the `base` row of
   `runs.csv` (the reference of the task difficulty).
2. Per task, method and seed (`--seeds`: Keras' random seed and the
   training data's shuffle seed), all on one schedule (`--steps`, AdamW,
   cosine decay, 10% warm-up), starting from the base:
   - `full`: the whole detector fine-tuned;
   - each fixed patch of `--patches` (`univision.modeling.patches` kinds),
     everything else frozen;
   - `spot@<lambda>` for each lambda of `--spot_lambdas`: the learned patch
     (`mnv4_retinanet_composites_spot`), lambda the weight of its size
     penalty, the gates' temperature annealed over the run.
3. Per run: trained on train-*, evaluated on val-* at the end of training
   (Model Garden's evaluator), then its last checkpoint evaluated the same
   way on test-*: the AP / AP50 the study reports. Also the per-task
   weights: trained parameters (a learned patch's gated-on copies
   included), their share of the detector's, the patch file's bytes (a full
   fine-tune stores every weight) and, for a learned patch, its gated-on
   layers (or blocks).
4. `summary.md` and `ap_vs_patch_size.png`, written by
   `univision.studies.model_patches_report` from the rows (its docstring
   says what they state): mean +- std over seeds per task and method, and
   issue #19's targets, each marked met or missed: the learned patch reaches
   0.95x full fine-tuning's AP on every task at <= 15% of the parameters on
   average; its size ranks with task difficulty (Spearman rho >= 0.8).

Flags:
  --output_dir           Study folder (required).
  --tasks                Task folders (required).
  --seeds                Seeds of every task run (default 0,1,2).
  --steps                Training steps of every task run (default 400).
  --patches              Fixed patches ('+'-joined kinds).
  --spot_lambdas         Size weights of the learned patches.
  --spot_granularity     'layer' (a gate per conv) or 'block'.
  --spot_override        Config overrides for the learned patches only.
  --patch_override       Config overrides for every patch run, fixed and
                         learned (e.g. their higher learning rate).
  --params_override      Config overrides for every run (YAML/JSON/a.b=c).
  --base_checkpoint      The shared base detector (a checkpoint or folder).
  --base_task            Task folder of the base (trained on it without
                         --base_checkpoint; its test AP either way).
  --backbone_checkpoint  Backbone initialisation of a base trained here
                         (not needed once <output_dir>/base/ keeps it).
  --base_steps           Training steps of the base (default 3000).
  --base_eval_every      The base's chunk: test AP every N steps (500).
  --record_only_tasks    Task names reported but outside the targets.
  --summary_only         Train nothing: rewrite summary.md and the plot
                         from the rows in runs.csv.

Outputs in `--output_dir`: `runs.csv` (a row per finished run, appended as
it finishes: a restarted study skips finished runs, resumes an unfinished
one from its checkpoint and rewrites a missing patch file from its run's
checkpoint where that is still there), `base_curve.csv`, `summary.md`, `ap_vs_patch_size.png`,
`patches/<task>/seed<seed>/<method>.npz` and each run's model folder under
`runs/` (the base's is `runs/base`); a base trained here also as weights
alone in `base/`, which the task runs start from (commit it with the rows:
a study resumed on another machine then goes on from the same base). Runs go seed by seed, so a study
stopped early has whole seeds. Task rows of another `--steps` are refused
(two schedules cannot be compared): a new schedule takes a new folder.
"""
import dataclasses
import gc
import json
import math
import os
from typing import Sequence

from absl import app
from absl import flags
import tensorflow as tf, tf_keras
from official.core import config_definitions as cfg
from official.core import exp_factory
from official.core import task_factory

import univision  # pylint: disable=unused-import  (sets the Keras mode)
from univision.core import config_parsing
from univision.core import run_clock
from univision.core import training
from univision.modeling import patches
from univision.modeling import spot_patch
from univision.studies import code_guard
from univision.studies import model_patches_report as report
from univision.studies import model_patches_rows as rows
from univision.studies import runs as runs_lib
from univision.studies import schedule
from univision.tasks import patch_outputs

DEFAULT_PATCHES = ('predictor', 'bn+predictor', 'bn+depthwise+predictor',
                   'bn+last_head_conv+predictor', 'bn+head_convs+predictor',
                   'bn+head_convs+decoder+predictor')
# lambda weighs the patch's expected share of the detector's parameters
# (0 to 1) against the detection loss (0.69 at the end of a 400-step
# bn+predictor run on footwear_on_textures, `configs/retinanet.py`). At 0.05
# even a whole-detector patch costs 0.05, so a layer joins for a small gain;
# at 1.0 copying everything costs more than the loss, so only layers that
# pay for themselves join; 0.2 lies between. Four to five times apart, so
# the learned sizes can spread.
DEFAULT_SPOT_LAMBDAS = (0.05, 0.2, 1.0)
DEFAULT_SEEDS = (0, 1, 2)
SPLITS = ('train', 'val', 'test')
# The base detector's class outputs: background + labels 1..4.
NUM_CLASSES = 5
# The base trains once; its row in `runs.csv` has this seed.
BASE_SEED = 0


@dataclasses.dataclass(frozen=True)
class Plan:
  """The task runs: every task x method x seed."""
  tasks: Sequence[str]  # Task folders.
  patches: Sequence[str] = DEFAULT_PATCHES
  spot_lambdas: Sequence[float] = DEFAULT_SPOT_LAMBDAS
  seeds: Sequence[int] = DEFAULT_SEEDS
  steps: int = 400

  def methods(self) -> list[str]:
    return [rows.FULL, *map(rows.spot_method, self.spot_lambdas),
            *self.patches]

  def keys(self) -> list[tuple[str, str, int]]:
    """(task, method, seed) of every run, in the order they run.

    Seed by seed; within a seed, the full fine-tune and the learned patches
    of every task come before the fixed-patch baselines, so a study cut
    short has the method's comparison on every task first. The baselines
    run patch by patch across the tasks, the first patch (the predictor,
    whose gap to full fine-tuning is the summary's feature-gap difficulty
    measure) on every task before the second.
    """
    learned = [(task_name(folder), method) for folder in self.tasks
               for method in (rows.FULL,
                              *map(rows.spot_method, self.spot_lambdas))]
    fixed = [(task_name(folder), method) for method in self.patches
             for folder in self.tasks]
    return [(task, method, seed) for seed in self.seeds
            for task, method in learned + fixed]


@dataclasses.dataclass(frozen=True)
class Base:
  """Where the shared base comes from (see the module)."""
  checkpoint: str | None = None
  task: str | None = None
  backbone_checkpoint: str | None = None
  steps: int = 3000
  eval_every: int = 500


@dataclasses.dataclass(frozen=True)
class Settings:
  """Config overrides and gate settings applied to the runs' configs."""
  params_override: str = ''  # Every run.
  patch_override: str = ''  # Fixed and learned patches.
  spot_override: str = ''  # Learned patches.
  spot_granularity: str = 'layer'


def task_name(folder: str) -> str:
  """A task's name: its folder's."""
  return os.path.basename(os.path.normpath(folder))


def check_task_folder(folder: str) -> None:
  """Refuses a task folder without a split or with labels the base lacks."""
  for split in SPLITS:
    if not tf.io.gfile.glob(os.path.join(folder, f'{split}-*')):
      raise ValueError(f'Task folder {folder} has no {split}-* TFRecords '
                       f'(the study needs {", ".join(SPLITS)}).')
  label_map = os.path.join(folder, 'label_map.json')
  if tf.io.gfile.exists(label_map):
    with tf.io.gfile.GFile(label_map) as f:
      labels = [int(k) for k in json.load(f)]
    if max(labels) >= NUM_CLASSES:
      raise ValueError(f'{label_map}: label {max(labels)}; the study\'s '
                       f'detectors have labels 1..{NUM_CLASSES - 1}.')


def _split(folder: str, split: str) -> str:
  return os.path.join(folder, f'{split}-*')


def _experiment(method: str) -> str:
  if method in (rows.FULL, rows.BASE):
    return 'mnv4_retinanet_composites'
  if rows.spot_lambda(method) is not None:
    return 'mnv4_retinanet_composites_spot'
  return 'mnv4_retinanet_composites_patch'


def run_config(folder: str, method: str, seed: int, steps: int,
               init_checkpoint: str, settings: Settings = Settings(),
               init_modules: str = 'all') -> cfg.ExperimentConfig:
  """The experiment config of one run of the study.

  Args:
    folder: The task's TFRecord folder.
    method: FULL or BASE (the whole detector trains), a patch spec or
      'spot@<lambda>'.
    seed: The training data's shuffle seed.
    steps: Training steps (the cosine decay and the gates' temperature
      schedule span them).
    init_checkpoint: The base's (or, for BASE, the backbone's) checkpoint.
    settings: The study's overrides, applied last: every run's, then the
      patches', then the learned patches'.
    init_modules: `init_checkpoint_modules`.
  """
  size_weight = rows.spot_lambda(method)
  patched = method not in (rows.FULL, rows.BASE)
  params = exp_factory.get_exp_config(_experiment(method))
  params.override({
      'task': {
          'init_checkpoint': init_checkpoint,
          'init_checkpoint_modules': init_modules,
          'train_data': {'input_path': _split(folder, 'train'), 'seed': seed},
          'validation_data': {'input_path': _split(folder, 'val')},
      },
      'trainer': schedule.trainer_override(
          steps, warmup_steps=max(1, steps // 10), validation_steps=-1),
  })
  if size_weight is not None:
    params.override({'task': {'gates': {
        'size_weight': size_weight, 'temperature_steps': steps,
        'granularity': settings.spot_granularity}}})
  elif patched:
    params.override({'task': {'patch': method}})
  for flag, text, applies in (
      ('--params_override', settings.params_override, True),
      ('--patch_override', settings.patch_override, patched),
      ('--spot_override', settings.spot_override, size_weight is not None)):
    if text and applies:
      params = config_parsing.apply_override(params, text, flag)
  params.validate()
  return params


def evaluate(params: cfg.ExperimentConfig, folder: str, model_dir: str,
             split: str = 'test') -> dict[str, float]:
  """COCO metrics of a run's model on a split of its task.

  Model Garden's evaluator on the latest checkpoint in `model_dir` (without
  one: the model as `task.init_checkpoint` initialises it); summaries go to
  `model_dir/<split>`.

  Raises:
    RuntimeError: naming the folder if no COCO AP came back.
  """
  evaluation = params.replace(
      task={'validation_data': {'input_path': _split(folder, split)}},
      trainer={'validation_steps': -1, 'validation_summary_subdir': split})
  _, metrics = training.run(evaluation, model_dir, mode='eval')
  _reset()
  if 'AP' not in metrics:
    raise RuntimeError(f'{model_dir}: evaluating {split}-* of {folder} gave '
                       'no COCO AP.')
  return metrics


def _detector_weights(model: tf_keras.Model) -> dict[str, int | float | None]:
  """`Run` fields of a run that stores the whole detector."""
  return {'parameters': patches.count_parameters(
              patches.trainable(model.weights)),
          'percent': 100.0,
          'file_bytes': 4 * patches.count_parameters(model.weights),
          'gates_on': None}


def _patch_weights(model: tf_keras.Model, spec: str,
                   path: str) -> dict[str, int | float | None]:
  """Writes the run's patch file; its `Run` fields."""
  size = patch_outputs.write_patch(model, spec, path)
  spot = getattr(model, 'spot_patch', None)
  return {'parameters': size.parameters, 'percent': 100.0 * size.fraction,
          'file_bytes': tf.io.gfile.stat(path).length,
          'gates_on': None if spot is None else sum(
              gate.hard_value == 1.0 for gate in spot.gates)}


def _train(params: cfg.ExperimentConfig, model_dir: str,
           patch_path: str | None) -> tuple[dict[str, float], float, dict]:
  """Trains a run: (its val metrics, its seconds so far (`run_clock`: every
  process that trained it), `Run` weights)."""
  model, val = training.run(params, model_dir)
  seconds = run_clock.read(model_dir)
  weights = (_detector_weights(model) if patch_path is None else
             _patch_weights(model, params.task.patch, patch_path))
  return val, seconds, weights


def train_and_test(params: cfg.ExperimentConfig, folder: str,
                   key: tuple[str, str, int], model_dir: str,
                   patch_path: str | None) -> rows.Run:
  """Trains one run (resuming), writes its patch, measures it on test-*.

  Args:
    params: The run's config (`run_config`).
    folder: The task folder.
    key: (task, method, seed); the seed also seeds Keras.
    model_dir: The run's folder.
    patch_path: Where its patch file goes; None for a whole detector.
  """
  task, method, seed = key
  tf_keras.utils.set_random_seed(seed)
  val, seconds, weights = _train(params, model_dir, patch_path)
  _reset()
  if 'AP' not in val:  # Resumed from a finished training: nothing ran.
    val = evaluate(params, folder, model_dir, 'val')
  test = evaluate(params, folder, model_dir, 'test')
  return rows.Run(task, method, seed, test['AP'], test['AP50'], val['AP'],
                  steps=params.trainer.train_steps, seconds=seconds, **weights)


def open_log(path: str) -> runs_lib.RunLog:
  """The study's `runs.csv`: a `Run` per finished (task, method, seed)."""
  return runs_lib.RunLog(path, runs_lib.columns_of(rows.Run),
                         key=('task', 'method', 'seed'))


def read_runs(path: str) -> list[rows.Run]:
  """The finished runs of `runs.csv` (none if the file does not exist)."""
  return [rows.Run(**row) for row in open_log(path).rows()]


def open_curve(path: str) -> runs_lib.RunLog:
  """The base's `base_curve.csv`: a `CurvePoint` per finished chunk."""
  return runs_lib.RunLog(path, runs_lib.columns_of(rows.CurvePoint),
                         key=('steps',))


def read_curve(path: str) -> list[rows.CurvePoint]:
  return [rows.CurvePoint(**row) for row in open_curve(path).rows()]


def chunk_ends(steps: int, every: int) -> list[int]:
  """The base's evaluation points: every `every` steps, and `steps`."""
  return [*range(every, steps, every), steps]


def _check_schedule(log: runs_lib.RunLog, steps: int) -> None:
  """Refuses task rows of another `--steps`.

  Rows of two schedules cannot be compared, and a run folder of the old
  schedule would resume into the new one.
  """
  other = [run for run in read_runs(log.path)
           if run.method != rows.BASE and run.steps != steps]
  if other:
    raise ValueError(
        f'{log.path}: {len(other)} task rows were trained for '
        f'{sorted({run.steps for run in other})} steps, not --steps={steps} '
        f'(first: {other[0].task}/{other[0].method}/seed {other[0].seed}). '
        'Rows of two schedules cannot be mixed: run the new schedule in '
        'another --output_dir (copy base/, base_curve.csv and the base row '
        'of runs.csv there to keep the base), or give the old --steps.')


class _Study:
  """One study folder: its logs, progress and the runs still to do."""

  def __init__(self, output_dir: str, plan: Plan, base: Base,
               settings: Settings):
    self.output_dir, self.plan, self.base = output_dir, plan, base
    self.settings = settings
    self.log = open_log(os.path.join(output_dir, 'runs.csv'))
    self.curve = open_curve(os.path.join(output_dir, 'base_curve.csv'))
    _check_schedule(self.log, plan.steps)
    self.done = self.log.done()
    planned = list(plan.keys())
    finished = len(self.done.intersection(planned))
    if base.task and not base.checkpoint:
      ends = chunk_ends(base.steps, base.eval_every)
      planned += ends
      finished += len({s for (s,) in self.curve.done()}.intersection(ends))
    elif base.task:
      planned.append(self.base_key())
      finished += self.base_key() in self.done
    self.progress = runs_lib.RunProgress(len(planned), finished)
    self.code = code_guard.CodeGuard()

  def base_key(self) -> tuple[str, str, int]:
    return (task_name(self.base.task), rows.BASE, BASE_SEED)

  def planned(self) -> list[tuple[str, str, int]]:
    """Every row `runs.csv` should end up with."""
    return [*([self.base_key()] if self.base.task else []),
            *self.plan.keys()]

  def base_checkpoint(self) -> str:
    """The shared base: given, or trained (resuming) and evaluated.

    A base trained here is kept as a weights-only checkpoint in
    `<output_dir>/base/` (small enough to commit), and every task run starts
    from it: run folders stay on the machine that made them, and a study
    resumed elsewhere must go on from the same base, not a retrained one.
    """
    if self.base.checkpoint:
      if self.base.task and self.base_key() not in self.done:
        self._evaluate_given_base()
      return self.base.checkpoint
    kept = os.path.join(self.output_dir, rows.BASE, 'weights')
    if tf.io.gfile.exists(kept + '.index'):
      if self.base_key() not in self.done:
        raise FileExistsError(
            f'{kept} holds a base but {self.log.path} has no base row: '
            'move the base/ folder aside to train a new base.')
      return kept
    model_dir = os.path.join(self.output_dir, 'runs', rows.BASE)
    if self.base_key() not in self.done:
      self._train_base(model_dir)
    elif tf.train.latest_checkpoint(model_dir) is None:
      raise FileNotFoundError(
          f'{self.log.path} has the base row but neither {kept} nor '
          f'{model_dir} holds its weights. A base trained again is another '
          'base, and the rows made with the old one cannot be mixed with '
          'new ones: move runs.csv and base_curve.csv aside to start the '
          'study again, or give the old base as --base_checkpoint.')
    params = self._base_config(self.base.steps, BASE_SEED, '', 'all')
    model = patch_outputs.restore_run(params, model_dir)
    # Laid out as a training checkpoint (Model Garden's RetinaNet task
    # initialises from `checkpoint_items`, univision's restores `model`).
    tf.train.Checkpoint(model=model, **model.checkpoint_items).write(kept)
    _reset()
    return kept

  def _base_config(self, train_steps: int, seed: int,
                   init: str, modules: str) -> cfg.ExperimentConfig:
    params = run_config(self.base.task, rows.BASE, seed, self.base.steps,
                        init, self.settings, modules)
    params.override({'trainer': {'train_steps': train_steps}})
    return params

  def _evaluate_given_base(self) -> None:
    """The given base's test AP on `--base_task`: the `base` row."""
    params = run_config(self.base.task, rows.BASE, BASE_SEED,
                        self.base.steps, self.base.checkpoint, self.settings)
    test = evaluate(params, self.base.task,
                    os.path.join(self.output_dir, 'runs', 'base_eval'))
    self.log.append(rows.Run(*self.base_key(), test['AP'], test['AP50'],
                             None, steps=0, seconds=0.0,
                             **_built_weights(params)))
    self.progress.finish(f'{self.base_key()[0]}/{rows.BASE}',
                         {'AP': test['AP']})

  def _train_base(self, model_dir: str) -> None:
    """Trains the base chunk by chunk, each chunk's test AP to the curve.

    A chunk restarts the input pipeline, so each chunk's data (and Keras)
    seed is its end step: chunks must not replay the first one's order.

    Raises:
      ValueError: without `--backbone_checkpoint` (a study whose base is
        kept needs none).
    """
    if not self.base.backbone_checkpoint:
      raise ValueError(
          '--backbone_checkpoint: needed to train the base ('
          f'{os.path.join(self.output_dir, rows.BASE)} keeps no trained '
          'base).')
    for end in chunk_ends(self.base.steps, self.base.eval_every):
      if (end,) in self.curve.done():
        continue
      params = self._base_config(end, end, self.base.backbone_checkpoint,
                                 'backbone')
      self.code.check(f'{rows.BASE} to step {end}')
      before = run_clock.read(model_dir) or 0.0  # The chunks before.
      run = train_and_test(params, self.base.task,
                           (task_name(self.base.task), rows.BASE, end),
                           model_dir, None)
      self.curve.append(rows.CurvePoint(end, run.ap, run.ap50, run.val_ap,
                                        round(run.seconds - before, 1)))
      self.progress.finish(f'{rows.BASE} to step {end}', {'AP': run.ap})
    points = read_curve(self.curve.path)
    last = next(p for p in points if p.steps == self.base.steps)
    params = self._base_config(self.base.steps, BASE_SEED,
                               self.base.backbone_checkpoint, 'backbone')
    self.log.append(rows.Run(*self.base_key(), last.ap, last.ap50,
                             last.val_ap, steps=self.base.steps,
                             seconds=round(sum(p.seconds for p in points), 1),
                             **_built_weights(params)))

  def task_run(self, folder: str, method: str, seed: int,
               base_checkpoint: str) -> None:
    """Runs (or resumes) one task run; restores a lost patch file."""
    task = task_name(folder)
    params = run_config(folder, method, seed, self.plan.steps,
                        base_checkpoint, self.settings)
    model_dir = os.path.join(self.output_dir, 'runs', task, method,
                             f'seed{seed}')
    patch_path = None
    if method != rows.FULL:
      patch_dir = os.path.join(self.output_dir, 'patches', task, f'seed{seed}')
      os.makedirs(patch_dir, exist_ok=True)
      patch_path = os.path.join(patch_dir, f'{method}.npz')
    if (task, method, seed) not in self.done:
      self.code.check(f'{task}/{method}/seed {seed}')
      run = train_and_test(params, folder, (task, method, seed), model_dir,
                           patch_path)
      self.log.append(run)
      self.progress.finish(f'{task}/{method}/seed {seed}', {'AP': run.ap})
    elif (patch_path and not tf.io.gfile.exists(patch_path)
          and tf.train.latest_checkpoint(model_dir) is not None):
      patch_outputs.write_patch_of_run(params, model_dir, patch_path)
      _reset()


def _built_weights(params: cfg.ExperimentConfig) -> dict:
  """`_detector_weights` of the config's model (built, not restored)."""
  model = task_factory.get_task(params.task).build_model()
  model(tf.zeros([1, *params.task.model.input_size]), training=False)
  weights = _detector_weights(model)
  _reset()
  return weights


def _check(plan: Plan, base: Base, settings: Settings,
           record_only: Sequence[str] = ()) -> None:
  """Refuses bad flags and task folders before anything trains."""
  for spec in plan.patches:
    patches.parse_kinds(spec)
  if any(not math.isfinite(w) or w < 0 for w in plan.spot_lambdas):
    raise ValueError(f'--spot_lambdas: {list(plan.spot_lambdas)}; each must '
                     'be a number >= 0.')
  if settings.spot_granularity not in spot_patch.GRANULARITIES:
    raise ValueError(f'--spot_granularity: {settings.spot_granularity!r}; '
                     f'choose from {spot_patch.GRANULARITIES}.')
  if not plan.seeds or len(set(plan.seeds)) != len(plan.seeds):
    raise ValueError(f'--seeds: {list(plan.seeds)}; give distinct seeds.')
  for flag, value in (('--steps', plan.steps), ('--base_steps', base.steps),
                      ('--base_eval_every', base.eval_every)):
    if value < 1:
      raise ValueError(f'{flag}: {value}; must be >= 1.')
  names = [task_name(folder) for folder in plan.tasks]
  if len(set(names)) != len(names):
    raise ValueError(f'--tasks: two folders of one name in {names}.')
  unknown = sorted(set(record_only) - set(names))
  if unknown:
    raise ValueError(f'--record_only_tasks: {unknown} not among the tasks of '
                     '--tasks.')
  for folder in [*plan.tasks, *([base.task] if base.task else [])]:
    check_task_folder(folder)
  if not (base.checkpoint or base.task):
    raise ValueError('Give --base_checkpoint, or --base_task (and '
                     '--backbone_checkpoint to train the base).')


def study(output_dir: str, plan: Plan, base: Base,
          settings: Settings = Settings(), record_only: Sequence[str] = (),
          summary_only: bool = False) -> list[rows.Run]:
  """Runs (or resumes) the whole study and writes its reports.

  Args:
    output_dir: The study folder.
    plan: The task runs.
    base: The shared base.
    settings: Config overrides and gate settings.
    record_only: Names of tasks of `plan` reported but left out of the
      targets (`model_patches_report.summary_markdown`).
    summary_only: Train nothing: write the reports from the rows already in
      `runs.csv` (a partial study says so at the top).

  Returns:
    Every run of `runs.csv`.
  """
  _check(plan, base, settings, record_only)
  if summary_only and not tf.io.gfile.exists(
      os.path.join(output_dir, 'runs.csv')):
    raise ValueError(f'--summary_only: no runs.csv in {output_dir}.')
  os.makedirs(output_dir, exist_ok=True)
  state = _Study(output_dir, plan, base, settings)
  if not summary_only:
    base_checkpoint = state.base_checkpoint()
    folders = {task_name(folder): folder for folder in plan.tasks}
    for task, method, seed in plan.keys():
      state.task_run(folders[task], method, seed, base_checkpoint)
  runs = read_runs(state.log.path)
  curve = read_curve(state.curve.path)
  with open(os.path.join(output_dir, 'summary.md'), 'w') as f:
    f.write(report.summary_markdown(runs, state.planned(), curve,
                                    record_only))
  report.plot(runs, os.path.join(output_dir, 'ap_vs_patch_size.png'))
  return runs


def _reset() -> None:
  """Frees the finished run's graph before the next one."""
  tf_keras.backend.clear_session()
  gc.collect()


def _define_flags() -> None:
  flags.DEFINE_string('output_dir', None, 'Study folder.')
  flags.DEFINE_list('tasks', None,
                    'Task folders (train-*, val-*, test-* TFRecords).')
  flags.DEFINE_list('seeds', [str(s) for s in DEFAULT_SEEDS],
                    'Seeds of every task run.')
  flags.DEFINE_integer('steps', 400, 'Training steps of every task run.')
  flags.DEFINE_list('patches', list(DEFAULT_PATCHES), 'Fixed patch specs.')
  flags.DEFINE_list('spot_lambdas', [f'{w:g}' for w in DEFAULT_SPOT_LAMBDAS],
                    'Size weights of the learned patches (spot@<lambda>).')
  flags.DEFINE_enum('spot_granularity', 'layer', list(spot_patch.GRANULARITIES),
                    'A gate per conv layer or per block.')
  flags.DEFINE_string('spot_override', '',
                      'Overrides for the learned patches only.')
  flags.DEFINE_string('patch_override', '',
                      'Overrides for every patch run, fixed and learned.')
  flags.DEFINE_string('params_override', '',
                      'Overrides applied to every run (YAML/JSON/a.b=c).')
  flags.DEFINE_string('base_checkpoint', None, 'The shared base detector.')
  flags.DEFINE_string('base_task', None, 'Task folder of the base.')
  flags.DEFINE_string('backbone_checkpoint', None,
                      'Backbone initialisation of a base trained here (not '
                      'needed once <output_dir>/base/ keeps it).')
  flags.DEFINE_integer('base_steps', 3000, 'Training steps of the base.')
  flags.DEFINE_integer('base_eval_every', 500,
                       'Test AP of the base every N steps.')
  flags.DEFINE_list('record_only_tasks', [],
                    'Task names reported but left out of the targets.')
  flags.DEFINE_bool('summary_only', False,
                    'Train nothing; write summary.md and the plot from the '
                    'rows in runs.csv.')
  flags.mark_flags_as_required(['output_dir', 'tasks'])


def _numbers(flag: str, values: Sequence[str], parse: type) -> list:
  """A list flag's values parsed, or a ValueError naming the flag."""
  try:
    return [parse(v) for v in values]
  except ValueError as e:
    raise ValueError(f'--{flag}: {list(values)} ({e}).') from e


def main(_):
  # The program entry point registers the experiments.
  from univision import registry_imports  # pylint: disable=g-import-not-at-top,unused-import
  f = flags.FLAGS
  plan = Plan(f.tasks, f.patches, _numbers('spot_lambdas', f.spot_lambdas,
                                           float),
              _numbers('seeds', f.seeds, int), f.steps)
  base = Base(f.base_checkpoint, f.base_task, f.backbone_checkpoint,
              f.base_steps, f.base_eval_every)
  settings = Settings(f.params_override, f.patch_override, f.spot_override,
                      f.spot_granularity)
  runs = study(f.output_dir, plan, base, settings, f.record_only_tasks,
               f.summary_only)
  print(f'Study: {len(runs)} runs, {f.output_dir}/summary.md')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
