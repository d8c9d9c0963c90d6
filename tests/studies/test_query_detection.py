"""Query-modulation study: settings, configs, summary, a tiny study."""
import json
import os

import pytest
import tensorflow as tf
from official.core import task_factory

from univision import registry_imports  # pylint: disable=unused-import
from univision.core import run_clock
from univision.studies import query_detection as qd
from univision.studies import query_detection_report as report
from univision.studies import query_detection_rows as rows


def _fake_runs_start_from_the_given_checkpoint(monkeypatch):
  """Fake training reads no backbone: nothing to keep (the real keeping
  is in `test_tiny_study_end_to_end` and `test_kept_backbone`)."""
  monkeypatch.setattr(qd.kept_backbone, 'keep',
                      lambda output_dir, given, load: given)


def test_settings_parse_and_bad_ones_are_named():
  assert qd.parse_setting('joint=') == ('joint', '')
  assert qd.parse_setting('qw2=task.query.query_weight=2.0') == (
      'qw2', 'task.query.query_weight=2.0')
  for bad in ('joint', '=x', 'a/b=x'):
    with pytest.raises(ValueError, match='--setting'):
      qd.parse_setting(bad)


def test_default_settings_are_the_issues_baselines(composites):
  params = {name: qd.run_config(composites, '/ckpt', 60, 2, overrides, 3)
            for name, overrides in map(qd.parse_setting,
                                       qd.DEFAULT_SETTINGS)}
  assert list(params) == ['standard_only', 'joint', 'joint_decoder_only',
                          'joint_query_only_gradient']
  assert params['standard_only'].task.query.query_weight == 0.0
  assert params['joint'].task.query.backbone_levels == [3, 4, 5]
  assert params['joint'].task.query.backbone_placement == 'pre_activation'
  assert params['joint'].task.query.query_batch_norm == 'moving'
  assert params['joint'].task.query.referring_gradient == 'query_only'
  assert params['joint_decoder_only'].task.query.backbone_levels == []
  assert params['joint'].task.query.query_gradient == 'all'
  assert params['joint_query_only_gradient'].task.query.query_gradient == (
      'query_only')
  joint = params['joint']
  assert joint.task.model.num_classes == 12
  assert joint.task.model.decoder.ssdlite.num_filters == 64
  assert joint.task.query.referring_rules == ['largest', 'leftmost']
  assert 0 < joint.task.query.referring_probability < 1
  assert joint.task.train_data.seed == 2
  assert joint.task.init_checkpoint_modules == 'backbone'
  assert joint.trainer.train_steps == 60
  assert joint.trainer.checkpoint_interval == 20
  assert joint.trainer.max_to_keep == 4
  assert joint.trainer.optimizer_config.learning_rate.cosine.decay_steps == 60


def test_bad_configs_and_folders_are_named(composites, tmp_path):
  with pytest.raises(ValueError, match=r'unknown config key.*task.qurey'):
    qd.run_config(composites, '/ckpt', 40, 0, 'task.qurey.x=1')
  with pytest.raises(ValueError, match='has no train'):
    qd.run_config(str(tmp_path), '/ckpt', 40, 0)
  with pytest.raises(ValueError, match='two settings of one name'):
    qd.study(str(tmp_path / 'out'), composites, '/ckpt', ['a=', 'a='])


def _run(setting, seed, map_, filtered, query, referring=(None, None)):
  return rows.Run(setting, seed, map_, filtered, filtered - 0.1, query,
                None if query is None else query - 0.1, *referring, 10, 1.0)


def test_summary_states_the_targets_with_the_seed_spread():
  runs = [_run('standard_only', 0, 0.50, 0.40, None),
          _run('standard_only', 1, 0.52, 0.42, None),
          _run('joint', 0, 0.505, 0.41, 0.50),
          _run('joint', 1, 0.515, 0.41, 0.48)]
  curve = [rows.CurvePoint('joint', 0, 5, 0.40, 0.3, 0.35),
           rows.CurvePoint('joint', 0, 10, 0.505, 0.41, 0.50),
           rows.CurvePoint('standard_only', 0, 5, 0.505, 0.4, None),
           rows.CurvePoint('standard_only', 0, 10, 0.50, 0.4, None)]
  text = report.summary_markdown(runs, curve, ['standard_only', 'joint'],
                                 [0, 1, 2])
  assert ('| joint | 2 | 0.510 ± 0.007 | 0.410 ± 0.000 | 0.310 ± 0.000 | '
          '0.490 ± 0.014 | 0.390 ± 0.014 | 0.080 ± 0.014 | 2 of 2 |') in text
  assert '| standard_only | 2 | 0.510 ± 0.014 | 0.410 ± 0.014 |' in text
  # Gain 0.490 - 0.410 = 0.080 > hypot(0.014, 0.014) = 0.020.
  assert ('- `joint`, seeds 0, 1: query pass vs standard-only filtered '
          '(present-class query-AP): 0.490 vs 0.410, gain +0.080 against a '
          'seed spread of 0.020: **met**') in text
  assert '(+0.000; within 0.01: **met**)' in text
  # Each target over the seeds both settings have: seed 1 of standard-only
  # is not compared with joint's seed 0 alone.
  partial = report.summary_markdown(runs[:3], [], ['standard_only', 'joint'],
                                    [0, 1])
  assert ('- `joint`, seed 0: standard mAP vs standard-only: 0.505 vs '
          '0.500 (+0.005; within 0.01: **met**)') in partial
  assert 'no seed in common' in report.summary_markdown(
      runs[1:3], [], ['standard_only', 'joint'], [0, 1])
  assert 'Missing runs (study in progress): standard_only/seed 2' in text
  assert '| joint | 5, 10 | +0.105 | +0.150 | no |' in text
  assert '| standard_only | 5, 10 | -0.005 | - | yes |' in text
  worse = [_run('standard_only', 0, 0.50, 0.45, None),
           _run('joint', 0, 0.45, 0.40, 0.44)]
  text = report.summary_markdown(worse, [], ['standard_only', 'joint'], [0])
  assert ('gain -0.010, from a single run on each side (a seed spread '
          'needs two): **not yet assessed**') in text
  assert '(-0.050; within 0.01: **missed**)' in text
  assert '| joint | [] | - | - | not known |' in text
  assert 'Not assessed' in report.summary_markdown(
      worse[:1], [], ['standard_only'], [0])
  # Every setting with a query pass is assessed, each on its own rows.
  both = worse + [_run('joint_query_only_gradient', 0, 0.495, 0.44, 0.46)]
  text = report.summary_markdown(
      both, [], ['standard_only', 'joint', 'joint_query_only_gradient'], [0])
  assert ('- `joint`, seed 0: query pass vs standard-only filtered '
          '(present-class query-AP): 0.440 vs 0.450, gain -0.010') in text
  assert ('- `joint_query_only_gradient`, seed 0: query pass vs standard-'
          'only filtered (present-class query-AP): 0.460 vs 0.450, gain '
          '+0.010') in text
  assert ('- `joint_query_only_gradient`, seed 0: standard mAP vs standard-'
          'only: 0.495 vs 0.500 (-0.005; within 0.01: **met**)') in text
  assert '## Referring queries' not in text  # No rules: no section.


def test_summary_only_writes_the_reports_and_trains_nothing(tmp_path,
                                                           monkeypatch):
  out = tmp_path / 'study'
  no_data = str(tmp_path / 'no_task')  # Neither data nor backbone needed.
  with pytest.raises(ValueError, match='--summary_only: no runs.csv in'):
    qd.study(str(out), no_data, None, summary_only=True)
  out.mkdir()
  log = rows.open_log(str(out / qd.RUNS_CSV))
  for run in (_run('standard_only', 0, 0.50, 0.45, None),
              _run('joint', 0, 0.49, 0.44, 0.47),
              _run('joint', 1, 0.48, 0.43, 0.46),
              _run('joint', 2, 0.1, 0.1, 0.1),  # Not a seed asked for.
              _run('other', 0, 0.1, 0.1, None)):  # Not a setting asked for.
    log.append(run)
  curve = rows.open_curve(str(out / qd.CURVE_CSV))
  for point in (rows.CurvePoint('joint', 0, 5, 0.40, 0.3, 0.35),
                rows.CurvePoint('joint', 0, 10, 0.49, 0.44, 0.47)):
    curve.append(point)
  rows.open_breakdown(str(out / qd.BREAKDOWN_CSV)).append(rows.Breakdown(
      'joint', 0, 'query_pass', 0.47, 0.52, 0.7, 0.8))
  fail = lambda *a, **k: pytest.fail('--summary_only trained or evaluated.')
  for module, name in ((qd.training, 'run'), (qd.kept_backbone, 'keep'),
                       (qd, 'evaluate_run'), (qd, 'evaluate_test')):
    monkeypatch.setattr(module, name, fail)
  runs = qd.study(str(out), no_data, None, seeds=[0, 1], summary_only=True)
  assert [(r.setting, r.seed) for r in runs] == [
      ('standard_only', 0), ('joint', 0), ('joint', 1)]
  summary = (out / 'summary.md').read_text()
  assert '| joint | 2 | 0.485 ± 0.007 |' in summary
  assert 'Missing runs (study in progress): standard_only/seed 1' in summary
  assert '| joint | 5, 10 | +0.090 | +0.120 | no |' in summary
  assert '| joint | query pass | 0.470 | 0.520 |' in summary
  assert (out / 'query_ap.png').read_bytes()[:4] == b'\x89PNG'
  assert not (out / 'init').exists()


def test_summary_shows_what_confusions_cost():
  breakdowns = [
      rows.Breakdown('standard_only', 0, 'standard_filtered', 0.40, 0.43,
                     0.70, 0.75),
      rows.Breakdown('standard_only', 1, 'standard_filtered', 0.42, 0.47,
                     0.72, 0.78),
      rows.Breakdown('joint', 0, 'query_pass', 0.41, 0.42, 0.7, 0.72),
      rows.Breakdown('other', 0, 'query_pass', 0.1, 0.2, 0.3, 0.4)]
  runs = [_run('standard_only', 0, 0.5, 0.4, None)]
  text = report.summary_markdown(runs, [], ['standard_only', 'joint'], [0],
                                 breakdown=breakdowns)
  assert '## Where present-class query-AP goes' in text
  assert ('| standard_only | standard filtered | 0.410 ± 0.014 | '
          '0.450 ± 0.028 | 0.040 ± 0.014 | 0.710 ± 0.014 | 0.765 ± 0.021 |'
          ) in text
  assert '| joint | query pass | 0.410 | 0.420 | 0.010 | 0.700 | 0.720 |' in (
      text)
  assert '| other |' not in text  # Not a summarised setting.
  assert '## Where' not in report.summary_markdown(
      runs, [], ['standard_only'], [0])


def test_summary_compares_one_class_detectors_with_the_baselines():
  one_class = [
      rows.Specialist(7, 0, 'backbone', 0.40, 0.32, None, 0.33, 10, 1.0),
      rows.Specialist(7, 1, 'backbone', 0.44, 0.32, None, None, 10, 1.0),
      rows.Specialist(7, 0, 'standard_only', 0.35, 0.32, 0.34, 0.33, 3, 1.0),
      rows.Specialist(2, 0, 'backbone', 0.50, None, None, None, 10, 1.0)]
  text = report.summary_markdown([], [], ['standard_only'], [0],
                                 specialists=one_class)
  assert '## Capacity check: one-class detectors' in text
  assert ('| 7 | backbone | 2 | 10 | 0.420 ± 0.028 | 0.320 ± 0.000 | - | '
          '0.330 | 0.100 ± 0.028 | - |') in text
  assert ('| 7 | standard_only | 1 | 3 | 0.350 | 0.320 | 0.340 | 0.330 | '
          '0.030 | 0.010 |') in text
  assert '| 2 | backbone | 1 | 10 | 0.500 | - | - | - | - | - |' in text
  assert text.index('| 2 |') < text.index('| 7 | backbone')


def test_specialists_are_one_class_query_detectors_scored_on_their_class(
    composites, tmp_path, monkeypatch):
  trained, only_modulation, evaluated = [], [], []

  def fake_train(params, model_dir, mode):
    del mode
    task, trainer = params.task, params.trainer
    trained.append((
        task.query.train_classes, task.query.standard_weight,
        task.query.referring_probability, os.path.relpath(model_dir, out),
        os.path.relpath(task.init_checkpoint, out),
        task.init_checkpoint_modules, trainer.train_steps,
        trainer.optimizer_config.learning_rate.cosine.initial_learning_rate))
    if task.init_checkpoint_modules == 'all':
      only_modulation.append(task.query.train_only_modulation)
    tf.train.CheckpointManager(tf.train.Checkpoint(step=tf.Variable(0)),
                               model_dir, max_to_keep=2).save(
                                   checkpoint_number=trainer.train_steps)
    run_clock.RunClock(model_dir).write()

  def fake_classes(params, folder, checkpoint, output_dir):
    del folder
    assert checkpoint.endswith(f'ckpt-{params.trainer.train_steps}')
    assert output_dir.endswith('query_eval')
    evaluated.append(os.path.relpath(output_dir, out))
    if not params.task.query.query_weight:  # The control.
      results = {'query_pass': {'AP_present/3': 0.35}}
    else:
      results = {'query_pass': {
          'query_AP_present': 0.1,
          'AP_present/3': 0.45 if params.trainer.train_steps == 6 else 0.5}}
    os.makedirs(output_dir, exist_ok=True)  # As the evaluation does.
    with open(os.path.join(output_dir, 'query_ap.json'), 'w') as f:
      json.dump(results, f)
    return results

  monkeypatch.setattr(qd.training, 'run', fake_train)
  monkeypatch.setattr(qd, 'evaluate_test', fake_classes)
  monkeypatch.setattr(qd, '_reset', lambda seed: None)
  _fake_runs_start_from_the_given_checkpoint(monkeypatch)
  out = str(tmp_path / 'study')
  # The standard-only run of seed 0 was evaluated: its AP of class 3 is
  # the baseline. Its checkpoint is not here yet.
  standard = os.path.join(out, 'runs', 'standard_only', 'seed0')
  os.makedirs(os.path.join(standard, 'query_eval'))
  with open(os.path.join(standard, 'query_eval', 'query_ap.json'), 'w') as f:
    json.dump({'standard_filtered': {'AP_present/3': 0.3}}, f)
  with pytest.raises(ValueError, match='--specialists: class 12 is not in '
                     r'1\.\.11'):
    qd.study(out, composites, os.path.join(out, 'ckpt'), [], seeds=[0],
             steps=6, curve_points=1, specialists=[12])
  study = lambda: qd.study(out, composites, os.path.join(out, 'ckpt'), [],
                           seeds=[0], steps=6, curve_points=1,
                           specialists=[3])
  assert study() == []
  rate = qd.run_config(composites, '', 6, 0).trainer.optimizer_config \
      .learning_rate.cosine.initial_learning_rate
  # From the backbone only: no standard-only detector to start from.
  assert trained == [([3], 0.0, 0.0, 'runs/specialist_3/seed0', 'ckpt',
                      'backbone', 6, rate)]
  tf.train.CheckpointManager(tf.train.Checkpoint(step=tf.Variable(0)),
                             standard, max_to_keep=1).save(
                                 checkpoint_number=6)
  for _ in range(2):  # The second study finds the rows and trains nothing.
    assert study() == []
  # Then the control (the standard-only detector trained on, every class,
  # no query pass) and the specialist, both as long at the same rate.
  start = 'runs/standard_only/seed0/ckpt-6'
  assert trained[1:] == [
      ([], 1.0, pytest.approx(1 / 3), 'runs/standard_only_continued/seed0',
       start, 'all', 2, rate / 4),
      ([3], 0.0, 0.0, 'runs/specialist_3_from_standard_only/seed0', start,
       'all', 2, rate / 4),
      # The control trains again only in name: its run is finished.
      ([], 1.0, pytest.approx(1 / 3), 'runs/standard_only_continued/seed0',
       start, 'all', 2, rate / 4),
      ([3], 0.0, 0.0, 'runs/specialist_3_from_standard_only_modulation_only/'
       'seed0', start, 'all', 2, rate / 4)]
  assert only_modulation == [False, False, False, True]
  # The control is scored once; the second specialist reads its score.
  assert evaluated == [
      'runs/specialist_3/seed0/query_eval',
      'runs/standard_only_continued/seed0/query_eval',
      'runs/specialist_3_from_standard_only/seed0/query_eval',
      'runs/specialist_3_from_standard_only_modulation_only/seed0/'
      'query_eval']
  found = rows.read_specialists(os.path.join(out, 'specialists.csv'))
  assert [(r.start, r.specialist, r.standard_only_filtered,
           r.continued_filtered, r.steps) for r in found] == [
               ('backbone', 0.45, 0.3, None, 6),
               ('standard_only', 0.5, 0.3, 0.35, 2),
               ('standard_only_modulation_only', 0.5, 0.3, 0.35, 2)]
  assert ('| 3 | standard_only | 1 | 2 | 0.500 | 0.300 | 0.350 | - | 0.200 '
          '| 0.150 |') in open(os.path.join(out, 'summary.md')).read()


def test_summary_compares_referring_queries_with_select_by_rule():
  runs = [_run('standard_only', 0, 0.5, 0.4, None, (None, 0.30)),
          _run('standard_only', 1, 0.5, 0.4, None, (None, 0.34)),
          _run('joint', 0, 0.5, 0.4, 0.45, (0.60, 0.32)),
          _run('joint', 1, 0.5, 0.4, 0.45, (0.64, 0.30))]
  text = report.summary_markdown(runs, [], ['standard_only', 'joint'], [0, 1])
  assert '## Referring queries' in text
  assert '| standard_only | - | 0.320 ± 0.028 | - |' in text
  assert '| joint | 0.620 ± 0.028 | 0.310 ± 0.014 | 0.310 ± 0.042 |' in text


def test_each_checkpoint_is_evaluated_once_across_restarts(composites,
                                                           tmp_path,
                                                           monkeypatch):
  trained, evaluated, killed = [], [], []

  def fake_train(params, model_dir, mode):
    assert mode == 'train'
    trained.append(params.task.query.query_weight)
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(step=tf.Variable(0)), model_dir, max_to_keep=4)
    for step in (2, 4):
      manager.save(checkpoint_number=step)
    run_clock.RunClock(model_dir).write()  # As training.run does.

  def fake_evaluate(params, folder, checkpoint, output_dir, queried,
                    referring):
    step = int(checkpoint.rsplit('-', 1)[1])
    assert referring == (step == 4)  # Referring queries: last step only.
    if step == 4 and queried and not killed:  # Dies before its last eval.
      killed.append(step)
      raise RuntimeError('killed')
    evaluated.append((queried, step, os.path.basename(output_dir)))
    return {'map': step / 10, 'filtered_present': 0.2, 'filtered_all': 0.1,
            'query_present': 0.3 if queried else None,
            'query_all': 0.2 if queried else None,
            'referring_query': 0.5 if queried else None,
            'referring_rule': 0.4}

  figures = []

  def fake_figure(params, checkpoint, path):
    del params
    figures.append((checkpoint.rsplit('-', 1)[1], os.path.basename(path)))
    open(path, 'wb').close()

  broken_down = []

  def fake_breakdown(params, folder, checkpoint, output_dir):
    del params, folder
    broken_down.append((checkpoint.rsplit('-', 1)[1],
                        os.path.basename(output_dir)))
    values = {'AP': 0.2, 'AP_confusion_free': 0.25, 'AP50': 0.5,
              'AP50_confusion_free': 0.6}
    return {'breakdown': {'standard_filtered': values, 'query_pass': values}}

  monkeypatch.setattr(qd.training, 'run', fake_train)
  monkeypatch.setattr(qd, 'evaluate_run', fake_evaluate)
  monkeypatch.setattr(qd, 'evaluate_test', fake_breakdown)
  monkeypatch.setattr(qd.query_detection_eval, 'two_queries', fake_figure)
  # Nothing to clear between fake runs (gc in a long-lived worker is slow).
  monkeypatch.setattr(qd, '_reset', lambda seed: None)
  _fake_runs_start_from_the_given_checkpoint(monkeypatch)
  out = str(tmp_path / 'study')
  settings = ['standard_only=task.query.query_weight=0.0', 'joint=']
  with pytest.raises(RuntimeError, match='killed'):
    qd.study(out, composites, '/ckpt', settings, seeds=[0], steps=4,
             curve_points=2)
  runs = qd.study(out, composites, '/ckpt', settings, seeds=[0], steps=4,
                  curve_points=2)
  assert trained == [0.0, 1.0, 1.0]  # The killed run resumes its training.
  assert evaluated == [(False, 2, 'query_eval_2'), (False, 4, 'query_eval'),
                       (True, 2, 'query_eval_2'), (True, 4, 'query_eval')]
  assert runs == [rows.Run('standard_only', 0, 0.4, 0.2, 0.1, None, None,
                         None, 0.4, 4, runs[0].seconds),
                  rows.Run('joint', 0, 0.4, 0.2, 0.1, 0.3, 0.2, 0.5, 0.4, 4,
                         runs[1].seconds)]
  assert [(p.setting, p.steps, p.query_present) for p in rows.read_curve(
      os.path.join(out, 'curve.csv'))] == [
          ('standard_only', 2, None), ('standard_only', 4, None),
          ('joint', 2, 0.3), ('joint', 4, 0.3)]
  # Finished: a restart trains and evaluates nothing.
  assert qd.study(out, composites, '/ckpt', settings, seeds=[0], steps=4,
                  curve_points=2) == runs
  assert len(trained) == 3 and len(evaluated) == 4
  # The queried setting's figure, once, from its last checkpoint.
  assert figures == [('4', 'two_queries_joint.png')]
  assert '![two_queries_joint.png](two_queries_joint.png)' in open(
      os.path.join(out, 'summary.md')).read()
  # The fake evaluations wrote no query_ap.json: each finished run's last
  # checkpoint was broken down once; the standard-only run has no query
  # pass of its own.
  assert broken_down == [('4', 'query_eval_breakdown')] * 2
  assert [(b.setting, b.detections, b.ap50) for b in rows.read_breakdown(
      os.path.join(out, 'breakdown.csv'))] == [
          ('standard_only', 'standard_filtered', 0.5),
          ('joint', 'standard_filtered', 0.5), ('joint', 'query_pass', 0.5)]


def test_tiny_study_end_to_end(composites, tmp_path):
  params = qd.run_config(composites, '', 2, 0)
  params.override({'task': {'model': {'input_size': [64, 64, 3]}}})
  # A backbone checkpoint for the runs to start from.
  model = task_factory.get_task(params.task).build_model()
  backbone = tf.train.Checkpoint(backbone=model.backbone).save(
      str(tmp_path / 'backbone' / 'ckpt'))
  out = str(tmp_path / 'study')
  settings = ['joint=task.model.input_size=[64,64,3],'
              'task.train_data.global_batch_size=4,'
              'task.validation_data.global_batch_size=4']
  (run,) = qd.study(out, composites, backbone, settings, seeds=[0], steps=2,
                    curve_points=1)
  for value in (run.map, run.filtered_present, run.filtered_all,
                run.query_present, run.query_all, run.referring_query,
                run.referring_rule):
    assert 0.0 <= value <= 1.0
  (point,) = rows.read_curve(os.path.join(out, 'curve.csv'))
  assert (point.steps, point.map) == (2, run.map)
  eval_dir = os.path.join(out, 'runs', 'joint', 'seed0', 'query_eval')
  assert os.path.exists(os.path.join(eval_dir, 'detections.png'))
  assert (tmp_path / 'study' / 'query_ap.png').read_bytes()[:4] == b'\x89PNG'
  assert (tmp_path / 'study' / 'two_queries_joint.png').read_bytes()[:4] == (
      b'\x89PNG')
  summary = (tmp_path / 'study' / 'summary.md').read_text()
  assert '| joint | 1 |' in summary
  # The breakdown comes from the final evaluation itself.
  found = rows.read_breakdown(os.path.join(out, 'breakdown.csv'))
  assert [r.detections for r in found] == ['standard_filtered', 'query_pass']
  assert found[0].ap == pytest.approx(run.filtered_present)
  assert found[1].ap == pytest.approx(run.query_present)
  assert '## Where present-class query-AP goes' in summary
  assert '![two_queries_joint.png](two_queries_joint.png)' in summary
  # The run started from the backbone the study keeps, a copy of the given
  # one; resumed without --init_checkpoint, the study goes on from it.
  run_params = (tmp_path / 'study' / 'runs' / 'joint' / 'seed0' /
                'params.yaml').read_text()
  assert os.path.join(out, 'init', 'backbone') in run_params
  kept = tf.train.load_checkpoint(os.path.join(out, 'init', 'backbone'))
  given = tf.train.load_checkpoint(backbone)
  names = [n for n, _ in tf.train.list_variables(backbone)
           if n.startswith('backbone/')]
  assert names and all(
      (kept.get_tensor(n) == given.get_tensor(n)).all() for n in names)
  assert qd.study(out, composites, None, settings, seeds=[0], steps=2,
                  curve_points=1) == [run]


def test_code_edited_during_training_stops_before_the_evaluation(
    composites, tmp_path, monkeypatch):
  sources = {'a.py': 'old'}
  evaluated = []

  def fake_train(params, model_dir, mode):
    del params, mode
    tf.train.CheckpointManager(tf.train.Checkpoint(step=tf.Variable(0)),
                               model_dir, max_to_keep=2).save(
                                   checkpoint_number=4)
    run_clock.RunClock(model_dir).write()  # As training.run does.
    sources['a.py'] = 'edited'  # Someone edits the checkout meanwhile.

  def fake_evaluate(params, folder, checkpoint, output_dir, queried,
                    referring):
    del params, folder, output_dir, referring
    evaluated.append(checkpoint)
    return {'map': 0.4, 'filtered_present': 0.2, 'filtered_all': 0.1,
            'query_present': 0.3 if queried else None,
            'query_all': 0.2 if queried else None,
            'referring_query': 0.5 if queried else None,
            'referring_rule': 0.4}

  monkeypatch.setattr(qd.code_guard, 'fingerprint',
                      lambda root: dict(sources))
  monkeypatch.setattr(qd.query_detection_eval, 'two_queries',
                      lambda *args: None)
  monkeypatch.setattr(qd.training, 'run', fake_train)
  monkeypatch.setattr(qd, 'evaluate_run', fake_evaluate)
  monkeypatch.setattr(qd, 'evaluate_test',
                      lambda *args: {'breakdown': {}})
  monkeypatch.setattr(qd, '_reset', lambda seed: None)
  _fake_runs_start_from_the_given_checkpoint(monkeypatch)
  out = str(tmp_path / 'study')
  settings = ['standard_only=task.query.query_weight=0.0']
  with pytest.raises(RuntimeError,
                     match='before evaluating standard_only seed 0: 1 source'):
    qd.study(out, composites, '/ckpt', settings, seeds=[0], steps=4,
             curve_points=1)
  assert not evaluated
  # Restarted, the study runs on the edited code from start to end.
  runs = qd.study(out, composites, '/ckpt', settings, seeds=[0], steps=4,
                  curve_points=1)
  assert len(evaluated) == 1 and [r.setting for r in runs] == ['standard_only']
