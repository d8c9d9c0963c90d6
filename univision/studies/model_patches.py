"""Model-patch study: full fine-tuning vs small patches of one shared base.

  python -m univision.studies.model_patches --output_dir=results/model_patches \
    --base_checkpoint=runs/retinanet_tops_fmnist \
    --tasks=data/composites/footwear_on_textures,data/tree_crowns

SpotPatch (arXiv 2101.01260) claims that a detector for task k can be a
shared base plus a small per-task patch, with accuracy close to fine-tuning
the whole detector. This study tests the claim on offline tasks:

1. The base: RetinaNet (`mnv4_retinanet_composites`) given by
   `--base_checkpoint`, or trained here on `--base_task` from
   `--backbone_checkpoint` for `--base_steps`.
2. Per task (a folder of Model Garden detection TFRecords `train-*`,
   `val-*`): full fine-tuning of the base, and each patch of `--patches`
   trained on the base with everything else frozen, all on the same
   schedule (`--steps`, AdamW, cosine decay, 10% warm-up).
3. Per run: COCO AP / AP50 on the task's val split (Model Garden's
   evaluator), and the per-task weights: trained parameters, their share of
   the detector's, and the bytes of the patch file (a full fine-tune stores
   every weight).
4. The rule (`choose`): per task, the smallest patch whose AP reaches
   `--keep` x the full fine-tune's AP; if none does, the task keeps its full
   fine-tune.

Outputs in `--output_dir`: `runs.csv` (a row per finished run, appended as
it finishes: a restarted study skips finished runs, resumes an unfinished
one from its checkpoint and rewrites a missing patch file from its run's
checkpoint), `selection.csv`, `summary.md`,
`ap_vs_patch_size.png`, `patches/<task>/<patch>.npz`, and each run's model
folder under `runs/`.
"""
import csv
import dataclasses
import gc
import json
import os
import time

from absl import app
from absl import flags
import tensorflow as tf, tf_keras
from official.core import config_definitions as cfg
from official.core import exp_factory
from official.core import task_factory

import univision  # pylint: disable=unused-import  (sets the Keras mode)
from univision.core import config_parsing
from univision.core import training
from univision.modeling import patches
from univision.studies import runs as runs_lib
from univision.studies import schedule

FULL = 'full'
BASE = 'base'
DEFAULT_PATCHES = ('predictor', 'bn+predictor',
                   'bn+bias+depthwise+predictor')
# The base detector's class outputs: background + labels 1..4.
NUM_CLASSES = 5


@dataclasses.dataclass(frozen=True)
class Run:
  """One finished training run (a row of `runs.csv`)."""
  task: str
  method: str  # FULL, BASE or a patch spec.
  ap: float
  ap50: float
  parameters: int  # Per-task trained parameters.
  percent: float  # Of the detector's trainable parameters.
  file_bytes: int  # What the task must store on top of the base.
  steps: int
  seconds: float


def _check_task_folder(folder: str) -> None:
  """Refuses a task folder without data or with labels the base lacks."""
  for split in ('train', 'val'):
    if not tf.io.gfile.glob(os.path.join(folder, f'{split}-*')):
      raise ValueError(f'--tasks: {folder} has no {split}-* TFRecords.')
  label_map = os.path.join(folder, 'label_map.json')
  if tf.io.gfile.exists(label_map):
    with tf.io.gfile.GFile(label_map) as f:
      labels = [int(k) for k in json.load(f)]
    if max(labels) >= NUM_CLASSES:
      raise ValueError(f'{label_map}: label {max(labels)}; the study\'s '
                       f'detectors have labels 1..{NUM_CLASSES - 1}.')


def run_config(folder: str, method: str, steps: int, init_checkpoint: str,
               init_modules: str = 'all',
               params_override: str = '') -> cfg.ExperimentConfig:
  """The experiment config of one run of the study.

  Args:
    folder: The task's TFRecord folder.
    method: FULL or BASE (whole detector trains) or a patch spec.
    steps: Training steps.
    init_checkpoint: The base (or, for BASE, the backbone's) checkpoint.
    init_modules: `init_checkpoint_modules`.
    params_override: Model Garden overrides (YAML/JSON/`a.b=c`) applied
      last, to every run alike (e.g. `task.model.input_size=[96,96,3]`).
  """
  patched = method not in (FULL, BASE)
  params = exp_factory.get_exp_config(
      'mnv4_retinanet_composites_patch' if patched
      else 'mnv4_retinanet_composites')
  params.override({
      'task': {
          'init_checkpoint': init_checkpoint,
          'init_checkpoint_modules': init_modules,
          'train_data': {'input_path': os.path.join(folder, 'train-*')},
          'validation_data': {'input_path': os.path.join(folder, 'val-*')},
      },
      'trainer': schedule.trainer_override(
          steps, warmup_steps=max(1, steps // 10), validation_steps=-1),
  })
  if patched:
    params.override({'task': {'patch': method}})
  if params_override:
    params = config_parsing.apply_override(params, params_override)
  params.validate()
  return params


def _train(params: cfg.ExperimentConfig, task: str, method: str,
           model_dir: str, patch_path: str | None) -> Run:
  """Trains and evaluates one run; saves its patch."""
  start = time.time()
  model, metrics = training.run(params, model_dir)
  seconds = time.time() - start
  if 'AP' not in metrics:
    raise RuntimeError(f'{model_dir}: the run ended without COCO metrics.')
  # Trainable parameters as timm counts them, frozen layers included.
  total = patches.count_parameters(patches.trainable(model.weights))
  if patch_path:
    size = patches.size(model, method)
    patches.save(model, method, patch_path)
    parameters, file_bytes = size.parameters, tf.io.gfile.stat(
        patch_path).length
  else:
    parameters = total
    file_bytes = 4 * patches.count_parameters(model.weights)
  return Run(task, method, metrics['AP'], metrics['AP50'], parameters,
             100.0 * parameters / total, int(file_bytes),
             params.trainer.train_steps, round(seconds, 1))


def _save_patch_from_checkpoint(params: cfg.ExperimentConfig, method: str,
                                model_dir: str, patch_path: str) -> None:
  """Writes a finished run's patch file again from its last checkpoint."""
  model = task_factory.get_task(params.task).build_model()
  size = params.task.model.input_size
  model(tf.zeros([1, *size]), training=False)
  checkpoint = tf.train.latest_checkpoint(model_dir)
  if checkpoint is None:
    raise FileNotFoundError(f'{model_dir}: no checkpoint to rebuild '
                            f'{patch_path} from.')
  tf.train.Checkpoint(**model.checkpoint_items).read(
      checkpoint).expect_partial().assert_existing_objects_matched()
  patches.save(model, method, patch_path)
  _reset()


def open_log(path: str) -> runs_lib.RunLog:
  """The study's `runs.csv`: a `Run` per finished (task, method)."""
  return runs_lib.RunLog(path, runs_lib.columns_of(Run),
                         key=('task', 'method'))


def read_runs(path: str) -> list[Run]:
  """The finished runs of `runs.csv` (none if the file does not exist)."""
  return [Run(**row) for row in open_log(path).rows()]


@dataclasses.dataclass(frozen=True)
class Choice:
  """The per-task decision of the rule."""
  task: str
  full_ap: float
  method: str
  ap: float
  parameters: int
  percent: float
  file_bytes: int


def choose(runs: list[Run], keep: float) -> list[Choice]:
  """Per task: the smallest patch with AP >= keep x full fine-tune AP.

  Tasks without a full fine-tune run are skipped. A task none of whose
  patches reaches the bar keeps the full fine-tune.
  """
  choices = []
  tasks = dict.fromkeys(r.task for r in runs if r.method == FULL)
  for task in tasks:
    full = next(r for r in runs if r.task == task and r.method == FULL)
    candidates = sorted(
        (r for r in runs if r.task == task and r.method not in (FULL, BASE)
         and r.ap >= keep * full.ap), key=lambda r: r.parameters)
    best = candidates[0] if candidates else full
    choices.append(Choice(task, full.ap, best.method, best.ap,
                          best.parameters, best.percent, best.file_bytes))
  return choices


def write_selection(choices: list[Choice], path: str) -> None:
  with open(path, 'w', newline='') as f:
    writer = csv.DictWriter(f, [x.name for x in dataclasses.fields(Choice)])
    writer.writeheader()
    for choice in choices:
      writer.writerow(dataclasses.asdict(choice))


def summary_markdown(runs: list[Run], choices: list[Choice],
                     keep: float) -> str:
  """The study as a markdown table (AP, per-task weights, the choice)."""
  chosen = {(c.task, c.method) for c in choices}
  tasks = list(dict.fromkeys(r.task for r in runs))
  runs = sorted(runs, key=lambda r: (tasks.index(r.task), r.method != FULL,
                                     r.parameters))
  lines = ['| task | per-task weights | % of params | bytes | AP | AP50 '
           '| chosen |', '|---|---|---:|---:|---:|---:|:---:|']
  for r in runs:
    mark = 'yes' if (r.task, r.method) in chosen else ''
    lines.append(f'| {r.task} | {r.method} | {r.percent:.2f} | '
                 f'{r.file_bytes:,} | {r.ap:.3f} | {r.ap50:.3f} | {mark} |')
  lines.append('')
  lines.append(f'Rule: the smallest patch with AP >= {keep:g} x the full '
               'fine-tune\'s AP; otherwise the full fine-tune.')
  return '\n'.join(lines) + '\n'


def plot(runs: list[Run], choices: list[Choice], path: str) -> None:
  """AP against per-task weights (% of parameters), one line per task."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  figure, axes = pyplot.subplots(figsize=(7, 4.5))
  chosen = {(c.task, c.method) for c in choices}
  for task in dict.fromkeys(r.task for r in runs if r.method != BASE):
    points = sorted((r for r in runs if r.task == task),
                    key=lambda r: r.percent)
    line, = axes.plot([r.percent for r in points], [r.ap for r in points],
                      marker='o', label=task)
    for r in points:
      if (r.task, r.method) in chosen:
        axes.plot(r.percent, r.ap, marker='o', markersize=14,
                  markerfacecolor='none', color=line.get_color())
  axes.set_xscale('log')
  axes.set_xlabel('per-task weights (% of the detector\'s parameters)')
  axes.set_ylabel('COCO AP (val)')
  axes.set_title('Model patches vs full fine-tuning (circled: chosen)')
  axes.grid(True, which='both', alpha=0.3)
  axes.legend(fontsize=8)
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  pyplot.close(figure)


def study(output_dir: str, tasks: list[str], patch_specs: list[str],
          steps: int, keep: float, base_checkpoint: str | None = None,
          base_task: str | None = None,
          backbone_checkpoint: str | None = None,
          base_steps: int = 1200,
          params_override: str = '') -> list[Choice]:
  """Runs (or resumes) the whole study; returns the per-task choices.

  Arguments are the flags of the same names (see `_define_flags`).
  """
  for spec in patch_specs:
    patches.parse_kinds(spec)
  for folder in tasks + ([base_task] if base_task else []):
    _check_task_folder(folder)
  if not (base_checkpoint or (base_task and backbone_checkpoint)):
    raise ValueError('Give --base_checkpoint, or --base_task and '
                     '--backbone_checkpoint to train the base.')
  os.makedirs(output_dir, exist_ok=True)
  log = open_log(os.path.join(output_dir, 'runs.csv'))
  done = log.done()
  planned = [(_name(folder), method) for folder in tasks
             for method in (FULL, *patch_specs)]
  if not base_checkpoint:
    planned.append((_name(base_task), BASE))
  progress = runs_lib.RunProgress(len(planned),
                                  len(done.intersection(planned)))
  if not base_checkpoint:
    base_checkpoint = os.path.join(output_dir, 'runs', BASE)
    if (_name(base_task), BASE) not in done:
      params = run_config(base_task, BASE, base_steps, backbone_checkpoint,
                          'backbone', params_override)
      _finish(log, progress, _train(params, _name(base_task), BASE,
                                    base_checkpoint, None))
  for folder in tasks:
    task = _name(folder)
    for method in (FULL, *patch_specs):
      model_dir = os.path.join(output_dir, 'runs', task, method)
      patch_path = None
      if method != FULL:
        os.makedirs(os.path.join(output_dir, 'patches', task), exist_ok=True)
        patch_path = os.path.join(output_dir, 'patches', task,
                                  f'{method}.npz')
      params = run_config(folder, method, steps, base_checkpoint,
                          params_override=params_override)
      if (task, method) not in done:
        _finish(log, progress, _train(params, task, method, model_dir,
                                      patch_path))
      elif patch_path and not tf.io.gfile.exists(patch_path):
        _save_patch_from_checkpoint(params, method, model_dir, patch_path)
  runs = read_runs(log.path)
  choices = choose(runs, keep)
  write_selection(choices, os.path.join(output_dir, 'selection.csv'))
  with open(os.path.join(output_dir, 'summary.md'), 'w') as f:
    f.write(summary_markdown(runs, choices, keep))
  plot(runs, choices, os.path.join(output_dir, 'ap_vs_patch_size.png'))
  return choices


def _name(folder: str) -> str:
  """A task's name: its folder's."""
  return os.path.basename(os.path.normpath(folder))


def _finish(log: runs_lib.RunLog, progress: runs_lib.RunProgress,
            run: Run) -> None:
  """Logs a finished run and frees its graph."""
  log.append(run)
  progress.finish(f'{run.task}/{run.method}', {'AP': run.ap})
  _reset()


def _reset() -> None:
  """Frees the finished run's graph before the next one."""
  tf_keras.backend.clear_session()
  gc.collect()


def _define_flags() -> None:
  flags.DEFINE_string('output_dir', None, 'Study folder.')
  flags.DEFINE_list('tasks', None, 'Task folders (train-*, val-* TFRecords).')
  flags.DEFINE_list('patches', list(DEFAULT_PATCHES), 'Patch specs.')
  flags.DEFINE_integer('steps', 400, 'Training steps of every task run.')
  flags.DEFINE_float('keep', 0.9, 'A patch must reach keep x full AP.')
  flags.DEFINE_string('base_checkpoint', None, 'The shared base detector.')
  flags.DEFINE_string('base_task', None, 'Task folder to train the base on.')
  flags.DEFINE_string('backbone_checkpoint', None,
                      'Backbone initialisation of the base.')
  flags.DEFINE_integer('base_steps', 1200, 'Training steps of the base.')
  flags.DEFINE_string('params_override', '',
                      'Overrides applied to every run (YAML/JSON/a.b=c).')
  flags.mark_flags_as_required(['output_dir', 'tasks'])


def main(_):
  # The program entry point registers the experiments.
  from univision import registry_imports  # pylint: disable=g-import-not-at-top,unused-import
  f = flags.FLAGS
  choices = study(f.output_dir, f.tasks, f.patches, f.steps, f.keep,
                  f.base_checkpoint, f.base_task, f.backbone_checkpoint,
                  f.base_steps, f.params_override)
  for c in choices:
    print(f'{c.task}: {c.method} (AP {c.ap:.3f} vs full {c.full_ap:.3f}, '
          f'{c.percent:.2f}% of parameters, {c.file_bytes:,} bytes)')
  print(f'Study: {f.output_dir}/summary.md')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
