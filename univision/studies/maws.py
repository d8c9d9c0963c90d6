"""MAWS end to end: MAE pre-pretraining -> weak supervision -> fine-tuning.

  python -m univision.studies.maws --output_dir=results/maws \
    --data=data/fashion_mnist

Singh et al. (ICCV 2023) initialise weakly supervised pretraining (WSP) from
an MAE encoder trained on the same images, then fine-tune. This study runs
the three recipes of `univision/configs/experiments/maws/` at tiny scale on
Fashion-MNIST, each stage's `task.init_checkpoint` pointing at the folder of
the stage it starts from, and fine-tunes the same recipe from other
starting points to compare:

| run              | recipe     | starts from       |
|------------------|------------|-------------------|
| mae              | 1_mae      | random            |
| weak             | 2_weak     | mae (MAWS)        |
| weak_scratch     | 2_weak     | random (WSP only) |
| finetune_maws    | 3_finetune | weak              |
| finetune_mae     | 3_finetune | mae               |
| finetune_weak    | 3_finetune | weak_scratch      |
| finetune_scratch | 3_finetune | random            |

Every run uses the same seed (head initialisation and data order). Outputs
in `--output_dir`: `runs.csv` (a row per finished run, appended as it
finishes; a restarted study skips finished runs, resumes an unfinished one
from its checkpoint, and only evaluates one whose training had finished),
`summary.md` and each run's folder under `runs/`.
"""
import dataclasses
import os
import time

from absl import app
from absl import flags
import tensorflow as tf, tf_keras
from official.core import config_definitions as cfg
from official.core import exp_factory

import univision  # pylint: disable=unused-import  (sets the Keras mode)
from univision.core import config_parsing
from univision.core import training
from univision.studies import runs as runs_lib

YAML_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'configs', 'experiments', 'maws')
MAE_YAML = os.path.join(YAML_DIR, 'fashion_mnist_vit_tiny_1_mae_cpu.yaml')
WEAK_YAML = os.path.join(YAML_DIR, 'fashion_mnist_vit_tiny_2_weak_cpu.yaml')
FINETUNE_YAML = os.path.join(YAML_DIR,
                             'fashion_mnist_vit_tiny_3_finetune_cpu.yaml')
METRICS = ('accuracy', 'top_5_accuracy', 'validation_loss')
COLUMNS = {'run': str, 'init_from': str, 'stage': str,
           **dict.fromkeys(METRICS, runs_lib.optional(float)), 'steps': int,
           'seconds': runs_lib.optional(float)}


@dataclasses.dataclass(frozen=True)
class Run:
  """One training run: its recipe and the run it is initialised from."""
  name: str
  stage: str  # 'mae', 'weak' or 'finetune': which YAML and step count.
  init_from: str = ''  # A previous run's name; '' = random initialisation.


RUNS = (Run('mae', 'mae'), Run('weak', 'weak', 'mae'),
        Run('weak_scratch', 'weak'),
        Run('finetune_maws', 'finetune', 'weak'),
        Run('finetune_mae', 'finetune', 'mae'),
        Run('finetune_weak', 'finetune', 'weak_scratch'),
        Run('finetune_scratch', 'finetune'))
YAMLS = {'mae': MAE_YAML, 'weak': WEAK_YAML, 'finetune': FINETUNE_YAML}


def _schedule(params: cfg.ExperimentConfig, steps: int) -> dict:
  """Trainer overrides that rescale the YAML's schedule to `steps`."""
  trainer = params.trainer
  optimizer = trainer.optimizer_config
  warmup = max(1, optimizer.warmup.linear.warmup_steps * steps //
               trainer.train_steps)
  cosine = ({'decay_steps': steps - warmup, 'offset': warmup}
            if optimizer.learning_rate.cosine.offset else
            {'decay_steps': steps})
  return {'train_steps': steps, 'validation_interval': steps,
          'checkpoint_interval': steps,
          'steps_per_loop': min(trainer.steps_per_loop, steps),
          'summary_interval': min(trainer.summary_interval, steps),
          'optimizer_config': {'learning_rate': {'cosine': cosine},
                               'warmup': {'linear': {'warmup_steps': warmup}}}}


def run_config(run: Run, output_dir: str, data: str, steps: int = 0,
               seed: int = 0, overrides: str = '') -> cfg.ExperimentConfig:
  """The config of `run`: its YAML with data, init and schedule replaced.

  Args:
    run: The run.
    output_dir: The study folder; `init_from` runs are in `runs/<name>`.
    data: The Fashion-MNIST TFRecord folder (the YAML's file patterns are
      kept, their folder replaced).
    steps: Training steps; 0 keeps the YAML's (the schedule is rescaled).
    seed: Seed of the training data order.
    overrides: `--params_override`-style overrides applied last.
  """
  path = YAMLS[run.stage]
  params = exp_factory.get_exp_config(config_parsing.experiment_of(path))
  params = config_parsing.apply_override(params, path, path)
  init = os.path.join(output_dir, 'runs', run.init_from) if run.init_from else ''
  task = params.task
  params.override({
      'task': {
          'init_checkpoint': init,
          'train_data': {'input_path': os.path.join(
              data, os.path.basename(task.train_data.input_path)),
                         'seed': seed},
          'validation_data': {'input_path': os.path.join(
              data, os.path.basename(task.validation_data.input_path))},
      },
      'trainer': _schedule(params, steps) if steps else {}})
  if overrides:
    params = config_parsing.apply_override(params, overrides)
  params.validate()
  return params


def _mode(params: cfg.ExperimentConfig, model_dir: str) -> str:
  """'eval' if `model_dir` holds the final checkpoint, else 'train_and_eval'.

  Model Garden's `train_and_eval` neither trains nor evaluates a run whose
  checkpoint is at `train_steps`: that is a run stopped before its row was
  written, which needs only its evaluation.
  """
  latest = tf.train.latest_checkpoint(model_dir)
  if latest is None:
    return 'train_and_eval'
  step = tf.train.load_variable(latest,
                                'global_step/.ATTRIBUTES/VARIABLE_VALUE')
  return 'eval' if step >= params.trainer.train_steps else 'train_and_eval'


def open_log(path: str) -> runs_lib.RunLog:
  """The study's `runs.csv`: a row per finished run."""
  return runs_lib.RunLog(path, COLUMNS, key=('run',))


def read_runs(path: str) -> list[dict]:
  """The finished runs of `runs.csv` (none if it does not exist)."""
  return open_log(path).rows()


def _percent(value: float | None) -> str:
  return '' if value is None else f'{100 * value:.1f}'


def summary_markdown(runs: list[dict]) -> str:
  """A table of every run, then the fine-tuning accuracies side by side."""
  lines = ['| run | stage | initialised from | accuracy | top-5 | '
           'validation loss | steps | seconds |',
           '|---|---|---|---:|---:|---:|---:|---:|']
  for r in runs:
    lines.append(
        f"| {r['run']} | {r['stage']} | {r['init_from'] or 'random'} | "
        f"{_percent(r['accuracy'])} | {_percent(r['top_5_accuracy'])} | "
        f"{r['validation_loss']:.4f} | {r['steps']} | {r['seconds']:.0f} |")
  lines += ['', 'Accuracy and top-5 in percent on the test split: the 10 '
            'classes for fine-tuning, the 4 clean groups for the weak stage; '
            'the MAE stage reports its reconstruction loss only.']
  finetuned = [r for r in runs if r['stage'] == 'finetune']
  if finetuned:
    lines += ['', '| fine-tuned from | accuracy |', '|---|---:|']
    lines += [f"| {r['init_from'] or 'random'} | {_percent(r['accuracy'])} |"
              for r in finetuned]
  return '\n'.join(lines) + '\n'


def study(output_dir: str, data: str, runs: list[str] | None = None,
          steps: dict[str, int] | None = None, seed: int = 0,
          overrides: str = '') -> list[dict]:
  """Trains every run of `runs` (default: all) not yet in runs.csv.

  Args:
    output_dir: The study folder.
    data: The Fashion-MNIST TFRecord folder.
    runs: Names from `RUNS`, in `RUNS` order; a run's `init_from` must be
      among them.
    steps: Training steps per stage ('mae', 'weak', 'finetune'); missing or
      0 keeps the YAML's.
    seed: The seed of every run.
    overrides: Overrides for every run (keys all three recipes have).

  Returns:
    The rows of the chosen runs, in `RUNS` order.
  """
  names = runs or [r.name for r in RUNS]
  chosen = [r for r in RUNS if r.name in names]
  unknown = set(names) - {r.name for r in chosen}
  if unknown:
    raise ValueError(f'--runs: unknown {sorted(unknown)}; known: '
                     f'{[r.name for r in RUNS]}.')
  for r in chosen:
    if r.init_from and r.init_from not in names:
      raise ValueError(f'--runs: {r.name} starts from {r.init_from}, which '
                       'is not selected.')
  os.makedirs(output_dir, exist_ok=True)
  log = open_log(os.path.join(output_dir, 'runs.csv'))
  done = log.done()
  progress = runs_lib.RunProgress(
      len(chosen), sum((r.name,) in done for r in chosen))
  for run in chosen:
    if (run.name,) in done:
      continue
    stage_steps = (steps or {}).get(run.stage, 0)
    params = run_config(run, output_dir, data, stage_steps, seed, overrides)
    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(seed)
    start = time.time()
    model_dir = os.path.join(output_dir, 'runs', run.name)
    _, metrics = training.run(params, model_dir, _mode(params, model_dir))
    if 'validation_loss' not in metrics:
      raise RuntimeError(f'{run.name}: the evaluation reported no '
                         'validation_loss.')
    log.append({'run': run.name, 'init_from': run.init_from,
                'stage': run.stage,
                **{m: metrics.get(m, '') for m in METRICS},
                'steps': params.trainer.train_steps,
                'seconds': round(time.time() - start, 1)})
    progress.finish(run.name,
                    {'validation_loss': metrics['validation_loss']})
  rows = {r['run']: r for r in log.rows()}
  result = [rows[r.name] for r in chosen]
  with open(os.path.join(output_dir, 'summary.md'), 'w') as f:
    f.write(summary_markdown(result))
  return result


def _define_flags() -> None:
  flags.DEFINE_string('output_dir', None, 'Where the study writes.')
  flags.DEFINE_string('data', 'data/fashion_mnist',
                      'Fashion-MNIST TFRecords (train-*, test-*).')
  flags.DEFINE_list('runs', [r.name for r in RUNS], 'Runs to train.')
  flags.DEFINE_integer('mae_steps', 0, 'MAE steps (0: the YAML\'s).')
  flags.DEFINE_integer('weak_steps', 0, 'Weak-stage steps (0: the YAML\'s).')
  flags.DEFINE_integer('finetune_steps', 0,
                       'Fine-tuning steps (0: the YAML\'s).')
  flags.DEFINE_integer('seed', 0, 'Seed of every run.')
  flags.DEFINE_string('params_override', '', 'Overrides for every run.')
  flags.mark_flags_as_required(['output_dir'])


def main(_):
  # The program entry point registers the experiments.
  from univision import registry_imports  # pylint: disable=g-import-not-at-top,unused-import
  f = flags.FLAGS
  rows = study(f.output_dir, f.data, f.runs,
               {'mae': f.mae_steps, 'weak': f.weak_steps,
                'finetune': f.finetune_steps}, f.seed, f.params_override)
  print(summary_markdown(rows))


if __name__ == '__main__':
  _define_flags()
  app.run(main)
