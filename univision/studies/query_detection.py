"""Query-modulated detection study: the query pass vs filtering a detector.

  python -m univision.studies.query_detection \
    --output_dir=results/query_detection \
    --task=data/composites/crowded_clothing [--init_checkpoint=runs/demo] \
    [--steps=12000] [--curve_points=6] [--seeds=0,1,2] [--setting=name=...]
    [--summary_only]

Fornoni et al. (arXiv 2106.10258) claim that a capacity-constrained detector
modulated by the user's query finds the queried objects better than the
standard detector filtered to the queried class, and that one model can be
trained for both at once. Each setting trains `mnv4_query_ssdlite_crowded`
(MNv4-Conv-S, 64-channel SSDLite, 11 classes) from the same backbone, on
the same schedule, for each seed (the backbone of `--init_checkpoint`, kept
in `<output_dir>/init/` by the study's first call: a study resumed on
another machine goes on from it, `kept_backbone`); the default settings are
the issue's baselines:

- `standard_only`: the standard detector trained alone (query weight 0: no
  query pass runs). Its detections filtered to q are baseline (a).
- `joint`: standard and query passes trained jointly, the query modulating
  (FiLM) inside the backbone blocks of levels 3-5 and every decoder level
  (the experiment's defaults). Its standard pass filtered to q is baseline
  (b), its query pass (c).
- `joint_decoder_only`: the ablation, the query modulating the decoder
  levels only.
- `joint_query_only_gradient`: `joint` whose class queries' loss trains
  only the query's own weights (the modulations and the embedding), so the
  shared detector takes the standard-only step: what the query steers on
  top of a detector that joint training does not touch.

Every run is evaluated on the task's held-out test split
(`query_detection_eval`): the standard pass's COCO mAP, and query-AP
(pycocotools, each class queried on every image) of the standard pass
filtered to q and of the query pass, over present-class queries and over
all; and, for referring queries ("the largest c", "the leftmost c"), the
accuracy of the query pass's top detection and of detect-then-select-by-
rule on the standard pass (`evaluation.referring_accuracy`). Checkpoints
every `steps / curve_points` steps are evaluated too (APs only), so
`curve.csv` shows whether AP levelled off. Each finished run's last
checkpoint also gives `breakdown.csv`: for the filtered standard pass and
the query pass, present-class query-AP with and without the detections
that are class confusions, at IoU 0.50:0.95 and 0.5
(`evaluation.query_headroom`), i.e. what telling the queried class from
its look-alikes could add at most. With `--specialists`, each listed class
also gets one-class detectors per seed (the query pass alone, always asked
for c, no standard loss; `specialists.csv`): `specialist_<c>` from the
backbone on the settings' schedule, and `specialist_<c>_from_standard_only`
fine-tuned from that seed's standard-only detector (which starts at the
filtered baseline exactly, as the query pass does; against the control
`standard_only_continued`, trained on as long on every class), every
weight or (`..._modulation_only`) the query's modulations alone; each one's
present-class AP of c against the standard-only detector filtered to c and
the joint model's query pass for c, the same seed. Query modulation
specialises one network to the queried class; a detector that is nothing
but that specialisation shows how much the task rewards it.

Outputs in `--output_dir`: `runs.csv` (a `Run` per finished (setting,
seed), appended as it finishes; a restarted study skips finished runs and
resumes an unfinished one from its checkpoint), `curve.csv`,
`breakdown.csv`, `specialists.csv`, `summary.md`
(`query_detection_report`), `query_ap.png`, `init/` (the backbone every
run starts from), and each run's folder under
`runs/` with its `query_eval/` (`query_ap.json`, `detections.png`: the
query pass's detections for every query on the same images).
"""
import gc
import json
import os
from typing import Any, Sequence

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
from univision.evaluation import query_detection_eval
from univision.studies import code_guard
from univision.studies import kept_backbone
from univision.studies import query_detection_report as report
from univision.studies import query_detection_rows as rows
from univision.studies import runs as runs_lib
from univision.studies import schedule

EXPERIMENT = 'mnv4_query_ssdlite_crowded'
DEFAULT_SETTINGS = (f'{report.STANDARD_ONLY}=task.query.query_weight=0.0',
                    f'{report.JOINT}=',
                    f'{report.JOINT}_decoder_only='
                    'task.query.backbone_levels=[]',
                    f'{report.JOINT}_query_only_gradient='
                    'task.query.query_gradient=query_only')
SPLITS = ('train', 'val', 'test')
# The study folder's row files.
RUNS_CSV, CURVE_CSV = 'runs.csv', 'curve.csv'
BREAKDOWN_CSV, SPECIALISTS_CSV = 'breakdown.csv', 'specialists.csv'
# A one-class detector of class {cls}: the query pass alone, always asked
# for it (present or absent), no referring queries; with no standard pass
# to update the moving statistics, its batch norms use the query batch's.
SPECIALIST = ('task.query.standard_weight=0.0,'
              'task.query.train_classes=[{cls}],'
              'task.query.referring_probability=0.0,'
              'task.query.query_batch_norm=batch')
# Where a specialist starts: the backbone, or the trained standard-only
# detector (fine-tuned for steps / TUNED_STEPS_DIVISOR at the learning rate
# / TUNED_RATE_DIVISOR), every weight or the modulations alone.
MODULATION_ONLY = f'{report.STANDARD_ONLY}_modulation_only'
SPECIALIST_STARTS = ('backbone', report.STANDARD_ONLY, MODULATION_ONLY)
TUNED_STEPS_DIVISOR = 3
TUNED_RATE_DIVISOR = 4
_LEARNING_RATE = ('trainer.optimizer_config.learning_rate.cosine.'
                  'initial_learning_rate')


def parse_setting(text: str) -> tuple[str, str]:
  """'name=overrides' -> (name, overrides); the overrides may be empty."""
  name, sep, overrides = text.partition('=')
  if not sep or not name or '/' in name:
    raise ValueError(f'--setting={text!r}: expected name=overrides (e.g. '
                     'qw2=task.query.query_weight=2.0) with a name without /.')
  return name, overrides


def run_config(task_folder: str, init_checkpoint: str, steps: int, seed: int,
               overrides: str = '', curve_points: int = 1
               ) -> cfg.ExperimentConfig:
  """The experiment config of one run (schedule scaled to `steps`).

  Raises:
    ValueError: naming the folder, if a split's TFRecords are missing.
  """
  for split in SPLITS:
    if not tf.io.gfile.glob(os.path.join(task_folder, f'{split}-*')):
      raise ValueError(f'--task: {task_folder} has no {split}-* TFRecords.')
  params = exp_factory.get_exp_config(EXPERIMENT)
  trainer = schedule.trainer_override(steps, checkpoints=curve_points,
                                      validation_steps=-1)
  # Checkpoints fall at host-loop ends: every curve point needs one.
  trainer['steps_per_loop'] = trainer['summary_interval'] = min(
      trainer['steps_per_loop'], trainer['checkpoint_interval'])
  trainer['max_to_keep'] = curve_points + 1
  params.override({
      'task': {
          'init_checkpoint': init_checkpoint,
          'init_checkpoint_modules': 'backbone',
          'train_data': {'input_path': os.path.join(task_folder, 'train-*'),
                         'seed': seed},
          'validation_data': {'input_path': os.path.join(task_folder,
                                                         'val-*')},
      },
      'trainer': trainer,
  })
  if overrides:
    params = config_parsing.apply_override(params, overrides)
  params.validate()
  return params


def _backbone(task_folder: str, init_checkpoint: str) -> tf_keras.Model:
  """The detector's backbone as a run starts it from `init_checkpoint`."""
  params = run_config(task_folder, init_checkpoint, 1, 0)
  task = task_factory.get_task(params.task)
  model = task.build_model()
  task.initialize(model)
  return model.backbone


def _reset(seed: int) -> None:
  tf_keras.backend.clear_session()
  tf_keras.utils.set_random_seed(seed)
  gc.collect()


def _checkpoints(model_dir: str) -> list[tuple[int, str]]:
  """(step, prefix) of the run's kept checkpoints, in step order."""
  state = tf.train.get_checkpoint_state(model_dir)
  paths = list(state.all_model_checkpoint_paths) if state else []
  # Model Garden numbers a training checkpoint by its step: ckpt-<step>.
  return sorted((int(p.rsplit('-', 1)[1]), p) for p in paths)


def figure_path(output_dir: str, setting: str) -> str:
  """Where the study keeps a setting's two-query figure."""
  return os.path.join(output_dir, f'two_queries_{setting}.png')


def _on_test(params: cfg.ExperimentConfig,
             task_folder: str) -> cfg.ExperimentConfig:
  return params.replace(task={'validation_data': {
      'input_path': os.path.join(task_folder, 'test-*')}})


def evaluate_run(params: cfg.ExperimentConfig, task_folder: str,
                 checkpoint: str, output_dir: str,
                 queried: bool,
                 referring: bool = True) -> dict[str, float | None]:
  """A checkpoint's test scores, in the `Run` columns' names.

  Args:
    params: The run's config.
    task_folder: The task's TFRecords (its test split is evaluated).
    checkpoint: The checkpoint.
    output_dir: Where the evaluation writes.
    queried: Whether the run trained a query pass (else its query columns
      are None: its query pass would be its filtered standard pass).
    referring: Whether referring queries are asked too.
  """
  results = query_detection_eval.evaluate(
      _on_test(params, task_folder), checkpoint, output_dir,
      referring=referring)
  query, filtered = results['query_pass'], results['standard_filtered']
  refer = results.get('referring', {})
  return {'map': results['standard']['mAP'],
          'filtered_present': filtered['query_AP_present'],
          'filtered_all': filtered['query_AP'],
          'query_present': query['query_AP_present'] if queried else None,
          'query_all': query['query_AP'] if queried else None,
          'referring_query': refer.get('query_pass') if queried else None,
          'referring_rule': refer.get('select_by_rule')}


def evaluate_test(params: cfg.ExperimentConfig, task_folder: str,
                  checkpoint: str, output_dir: str) -> dict[str, Any]:
  """`query_detection_eval.evaluate` of a checkpoint on test, without
  referring queries (its `query_pass`, `standard_filtered`, `breakdown`...,
  also written to `output_dir/query_ap.json`)."""
  return query_detection_eval.evaluate(
      _on_test(params, task_folder), checkpoint, output_dir,
      referring=False)


def _final_evaluation(model_dir: str) -> dict[str, Any] | None:
  """A run's saved final evaluation (`query_eval/query_ap.json`), or None
  if it has none here."""
  path = os.path.join(model_dir, 'query_eval', 'query_ap.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def _class_ap(model_dir: str, detections: str, cls: int) -> float | None:
  """A finished run's present-class AP of `cls` from its final
  evaluation, or None if that file is not here."""
  saved = _final_evaluation(model_dir)
  return None if saved is None else saved[detections].get(
      f'AP_present/{cls}')


class _Study:
  """One study folder: its logs, progress and the runs still to do."""

  def __init__(self, output_dir: str, task_folder: str, init_checkpoint: str,
               settings: list[tuple[str, str]], seeds: Sequence[int],
               steps: int, curve_points: int, specialists: Sequence[int]):
    self.output_dir, self.task_folder = output_dir, task_folder
    self.init_checkpoint, self.settings = init_checkpoint, settings
    self.seeds, self.steps, self.curve_points = seeds, steps, curve_points
    self.log = rows.open_log(os.path.join(output_dir, RUNS_CSV))
    self.curve = rows.open_curve(os.path.join(output_dir, CURVE_CSV))
    self.breakdown = rows.open_breakdown(
        os.path.join(output_dir, BREAKDOWN_CSV))
    self.specialists = rows.open_specialists(
        os.path.join(output_dir, SPECIALISTS_CSV))
    planned = {(name, seed) for name, _ in settings for seed in seeds}
    one_class = {(cls, seed, start) for cls in specialists for seed in seeds
                 for start in SPECIALIST_STARTS}
    self.progress = runs_lib.RunProgress(
        len(planned) + len(one_class),
        len(planned & self.log.done()) +
        len(one_class & self.specialists.done()))
    self.code = code_guard.CodeGuard()

  def figures(self) -> None:
    """`two_queries_<setting>.png` of each queried setting's first seed.

    Made from the run's last checkpoint as soon as the run has its row
    (kept in the study folder, as run folders stay on the machine that
    made them); a run whose folder is gone is skipped.
    """
    seed = self.seeds[0]
    done = self.log.done()
    for name, overrides in self.settings:
      path = figure_path(self.output_dir, name)
      if os.path.exists(path) or (name, seed) not in done:
        continue
      model_dir = os.path.join(self.output_dir, 'runs', name, f'seed{seed}')
      last = dict(_checkpoints(model_dir)).get(self.steps)
      params = run_config(self.task_folder, self.init_checkpoint, self.steps,
                          seed, overrides, self.curve_points)
      if params.task.query.query_weight <= 0 or last is None:
        continue
      self.code.check(f'the two-query figure of {name}')
      query_detection_eval.two_queries(
          _on_test(params, self.task_folder), last, path)
      _reset(seed)

  def breakdowns(self) -> None:
    """`breakdown.csv` rows of every finished run that lacks them.

    Read from the final evaluation's `query_ap.json`; a run evaluated before
    it held a breakdown has its last checkpoint evaluated again (into
    `query_eval_breakdown/`); a run whose folder is gone is skipped.
    """
    have, done = self.breakdown.done(), self.log.done()
    for name, overrides in self.settings:
      for seed in self.seeds:
        if (name, seed) not in done or (
            name, seed, 'standard_filtered') in have:
          continue
        params = run_config(self.task_folder, self.init_checkpoint,
                            self.steps, seed, overrides, self.curve_points)
        model_dir = os.path.join(self.output_dir, 'runs', name, f'seed{seed}')
        found = (_final_evaluation(model_dir) or {}).get('breakdown', {})
        last = dict(_checkpoints(model_dir)).get(self.steps)
        if not found and last is not None:
          self.code.check(f'the breakdown of {name} seed {seed}')
          found = evaluate_test(
              params, self.task_folder, last,
              os.path.join(model_dir, 'query_eval_breakdown'))['breakdown']
          _reset(seed)
        queried = params.task.query.query_weight > 0
        for detections in ('standard_filtered', 'query_pass')[:1 + queried]:
          if detections in found:
            values = found[detections]
            self.breakdown.append(rows.Breakdown(
                name, seed, detections, values['AP'],
                values['AP_confusion_free'], values['AP50'],
                values['AP50_confusion_free']))

  def _train(self, params: cfg.ExperimentConfig, model_dir: str, what: str,
             seed: int) -> float:
    """Trains (or resumes) a run; returns its wall seconds over processes.

    Raises:
      RuntimeError: if the sources changed since the study started (before
        training or before evaluating, `code_guard`).
    """
    self.code.check(f'training {what}')
    _reset(seed)
    training.run(params, model_dir, mode='train')
    seconds = run_clock.read(model_dir)
    _reset(seed)
    self.code.check(f'evaluating {what}')
    return seconds

  def _one_class_aps(self, params: cfg.ExperimentConfig, name: str,
                     seed: int) -> tuple[dict[str, float], float]:
    """Trains (or resumes) run `name` and scores its last checkpoint (once:
    a run scored before, e.g. a control two specialists share, is read
    back).

    Returns:
      The query pass's present-class AP per class ({'AP_present/<c>': AP},
      no referring queries) and the run's wall seconds.
    """
    model_dir = os.path.join(self.output_dir, 'runs', name, f'seed{seed}')
    seconds = self._train(params, model_dir, f'{name} seed {seed}', seed)
    saved = _final_evaluation(model_dir)
    if saved is not None:
      return saved['query_pass'], seconds
    steps = params.trainer.train_steps
    last = dict(_checkpoints(model_dir)).get(steps)
    if last is None:
      raise RuntimeError(f'{model_dir}: no checkpoint of step {steps}.')
    aps = evaluate_test(params, self.task_folder, last,
                        os.path.join(model_dir, 'query_eval'))['query_pass']
    _reset(seed)
    return aps, seconds

  def specialist(self, cls: int, seed: int, start: str) -> None:
    """Trains (or resumes) a one-class detector of `cls` and logs it.

    Args:
      cls: The class.
      seed: The seed.
      start: 'backbone' (the study's schedule from its backbone checkpoint)
        or 'standard_only' (fine-tuned from that seed's standard-only
        detector, a third of the schedule at a quarter of its learning
        rate; skipped while that detector is not trained), or
        `MODULATION_ONLY` (the same, training only the modulations and the
        query embedding). The fine-tuned ones have a control: the
        standard-only detector trained on as long at that rate on every
        class (`standard_only_continued`).
    """
    if (cls, seed, start) in self.specialists.done():
      return
    runs = os.path.join(self.output_dir, 'runs')
    overrides = SPECIALIST.format(cls=cls)
    steps, init, name = self.steps, self.init_checkpoint, f'specialist_{cls}'
    continued = None
    if start != 'backbone':
      init = dict(_checkpoints(os.path.join(
          runs, report.STANDARD_ONLY, f'seed{seed}'))).get(self.steps)
      if init is None:
        return
      rate = run_config(self.task_folder, init, steps, seed).trainer \
          .optimizer_config.learning_rate.cosine.initial_learning_rate
      steps = max(1, self.steps // TUNED_STEPS_DIVISOR)
      tuned = (f'task.init_checkpoint_modules=all,'
               f'{_LEARNING_RATE}={rate / TUNED_RATE_DIVISOR}')
      overrides += ',' + tuned
      if start == MODULATION_ONLY:
        overrides += ',task.query.train_only_modulation=true'
      name += f'_from_{start}'
      # The control, without a query pass: its query pass's detections
      # (zero modulation) are its standard ones filtered to the class.
      control, _ = self._one_class_aps(
          run_config(self.task_folder, init, steps, seed,
                     f'task.query.query_weight=0.0,{tuned}',
                     self.curve_points),
          f'{report.STANDARD_ONLY}_continued', seed)
      continued = control[f'AP_present/{cls}']
    aps, seconds = self._one_class_aps(
        run_config(self.task_folder, init, steps, seed, overrides,
                   self.curve_points), name, seed)
    baseline = lambda setting, detections: _class_ap(
        os.path.join(runs, setting, f'seed{seed}'), detections, cls)
    row = rows.Specialist(
        cls, seed, start, aps[f'AP_present/{cls}'],
        baseline(report.STANDARD_ONLY, 'standard_filtered'), continued,
        baseline(report.JOINT, 'query_pass'), steps, seconds)
    self.specialists.append(row)
    self.progress.finish(f'{name} seed {seed}', {'AP': row.specialist})

  def run(self, name: str, overrides: str, seed: int) -> None:
    """Trains (or resumes) one run and evaluates its checkpoints on test."""
    params = run_config(self.task_folder, self.init_checkpoint, self.steps,
                        seed, overrides, self.curve_points)
    queried = params.task.query.query_weight > 0
    model_dir = os.path.join(self.output_dir, 'runs', name, f'seed{seed}')
    seconds = self._train(params, model_dir, f'{name} seed {seed}', seed)
    curve_done = self.curve.done()
    final = None
    for step, checkpoint in _checkpoints(model_dir):
      last = step == self.steps
      if (name, seed, step) in curve_done and not last:
        continue
      folder = os.path.join(model_dir, 'query_eval' if last
                            else f'query_eval_{step}')
      aps = evaluate_run(params, self.task_folder, checkpoint, folder,
                         queried, referring=last)
      _reset(seed)
      if (name, seed, step) not in curve_done:
        self.curve.append(rows.CurvePoint(
            name, seed, step, aps['map'], aps['filtered_present'],
            aps['query_present']))
      if last:
        final = aps
    if final is None:
      raise RuntimeError(f'{model_dir}: no checkpoint of step {self.steps}.')
    run = rows.Run(name, seed, **final, steps=self.steps, seconds=seconds)
    self.log.append(run)
    self.progress.finish(f'{name} seed {seed}', {
        'mAP': run.map, 'filtered': run.filtered_present,
        **({'query': run.query_present} if queried else {})})


def study(output_dir: str, task_folder: str, init_checkpoint: str | None,
          settings: Sequence[str] = DEFAULT_SETTINGS,
          seeds: Sequence[int] = (0, 1, 2), steps: int = 12000,
          curve_points: int = 6, specialists: Sequence[int] = (),
          summary_only: bool = False) -> list[rows.Run]:
  """Trains and evaluates every (setting, seed) not yet in `runs.csv`,
  and the one-class detector of each of `specialists` per seed.

  Every run starts from the backbone kept in `<output_dir>/init/`
  (`kept_backbone`), written from `init_checkpoint` by the first call;
  later calls may leave `init_checkpoint` out.

  Args:
    output_dir: The study folder.
    task_folder: Detection TFRecords (train-*, val-*, test-*) and
      label_map.json; unused with `summary_only`.
    init_checkpoint: The backbone of the first call (None once kept).
    settings: `name=overrides` per setting.
    seeds: The seeds of every setting.
    steps: Training steps per run.
    curve_points: Checkpoints per run evaluated on test.
    specialists: Classes to train a one-class detector of, per seed.
    summary_only: Only write `summary.md` and `query_ap.png` again from the
      CSVs (rows added by hand, or a study stopped before its summary):
      nothing trains or evaluates; neither backbone nor data is needed.

  Returns:
    The rows of `runs.csv` of `settings` and `seeds`.

  Raises:
    ValueError: on bad settings, steps or specialists, or `summary_only`
      without a `runs.csv`.
  """
  parsed = [parse_setting(s) for s in settings]
  names = [name for name, _ in parsed]
  if len(set(names)) != len(names):
    raise ValueError(f'--setting: two settings of one name in {names}.')
  if summary_only:
    if not os.path.exists(os.path.join(output_dir, RUNS_CSV)):
      raise ValueError(f'--summary_only: no {RUNS_CSV} in {output_dir}.')
    return _write_reports(output_dir, names, seeds, specialists)
  if steps < 1 or curve_points < 1:
    raise ValueError(f'--steps {steps}, --curve_points {curve_points}: both '
                     'must be >= 1.')
  for name, overrides in parsed:  # Refuse bad overrides before training.
    run_config(task_folder, init_checkpoint or '', steps, 0, overrides)
  for cls in specialists:
    classes = run_config(task_folder, init_checkpoint or '', steps, 0,
                         SPECIALIST.format(cls=cls)).task.model.num_classes
    if not 0 < cls < classes:
      raise ValueError(f'--specialists: class {cls} is not in 1..'
                       f'{classes - 1}.')
  os.makedirs(output_dir, exist_ok=True)
  init_checkpoint = kept_backbone.keep(
      output_dir, init_checkpoint,
      lambda checkpoint: _backbone(task_folder, checkpoint))
  # Frees the backbone `keep` built to compare checkpoints (each run
  # seeds itself: the seed here is unused).
  _reset(0)
  state = _Study(output_dir, task_folder, init_checkpoint, parsed, seeds,
                 steps, curve_points, specialists)
  done = state.log.done()
  state.figures()
  state.breakdowns()
  for seed in seeds:  # Seed by seed: a study stopped early has whole seeds.
    for name, overrides in parsed:
      if (name, seed) not in done:
        state.run(name, overrides, seed)
        state.figures()
        state.breakdowns()
    for cls in specialists:
      for start in SPECIALIST_STARTS:
        state.specialist(cls, seed, start)
  return _write_reports(output_dir, names, seeds, specialists)


def _write_reports(output_dir: str, names: Sequence[str],
                   seeds: Sequence[int],
                   specialists: Sequence[int]) -> list[rows.Run]:
  """Writes `summary.md` and `query_ap.png` from the study's CSVs.

  Args:
    output_dir: The study folder.
    names: The settings reported.
    seeds: The seeds reported.
    specialists: The one-class detectors' classes reported.

  Returns:
    The rows of `runs.csv` of the settings `names` and seeds `seeds`.
  """
  path = lambda name: os.path.join(output_dir, name)
  runs = [r for r in rows.read_runs(path(RUNS_CSV))
          if r.setting in names and r.seed in seeds]
  curve = rows.read_curve(path(CURVE_CSV))
  breakdown = [b for b in rows.read_breakdown(path(BREAKDOWN_CSV))
               if b.setting in names and b.seed in seeds]
  specialist_rows = [r for r in rows.read_specialists(path(SPECIALISTS_CSV))
                     if r.cls in specialists and r.seed in seeds]
  with open(path('summary.md'), 'w') as f:
    f.write(report.summary_markdown(
        runs, curve, names, list(seeds), breakdown=breakdown,
        specialists=specialist_rows,
        figures=[os.path.basename(figure_path(output_dir, name))
                 for name in names
                 if os.path.exists(figure_path(output_dir, name))]))
  if runs:
    report.plot(runs, path('query_ap.png'))
  return runs


def _define_flags() -> None:
  flags.DEFINE_string('output_dir', None, 'Where the study writes.')
  flags.DEFINE_string('task', None, 'Detection TFRecord folder (train-*, '
                      'val-*, test-*, label_map.json); not needed with '
                      '--summary_only.')
  flags.DEFINE_string('init_checkpoint', None,
                      'Backbone checkpoint the study starts from: needed '
                      'until --output_dir keeps it in init/.')
  flags.DEFINE_multi_string('setting', list(DEFAULT_SETTINGS),
                            'name=overrides, repeated.')
  flags.DEFINE_list('seeds', ['0', '1', '2'], 'Seeds of every setting.')
  flags.DEFINE_integer('steps', 12000, 'Training steps per run.')
  flags.DEFINE_integer('curve_points', 6,
                       'Checkpoints per run evaluated on test.')
  flags.DEFINE_list('specialists', [], 'Classes to train a one-class '
                    'detector of, per seed (a capacity check).')
  flags.DEFINE_boolean('summary_only', False, 'Only write summary.md and '
                       'query_ap.png again from the CSVs.')
  flags.mark_flags_as_required(['output_dir'])


def main(_):
  # The program entry point registers the experiments.
  from univision import registry_imports  # pylint: disable=g-import-not-at-top,unused-import
  f = flags.FLAGS
  if not (f.task or f.summary_only):
    raise app.UsageError('--task is required (except with --summary_only).')
  runs = study(f.output_dir, f.task, f.init_checkpoint, f.setting,
               [int(s) for s in f.seeds], f.steps, f.curve_points,
               [int(c) for c in f.specialists], f.summary_only)
  print(f'{len(runs)} runs; {os.path.join(f.output_dir, "summary.md")}')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
