"""Model-patch study: configs, files, one small study end to end.

The report's statistics and wording: test_model_patches_report.py.
"""
import json
import logging
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from official.core import exp_factory
from official.core import task_factory

from tests import conftest
from univision import registry_imports  # pylint: disable=unused-import
from univision.configs import retinanet as retinanet_cfg
from univision.modeling import patches
from univision.studies import model_patches as mp
from univision.studies import model_patches_rows as rows

LR = 'trainer.optimizer_config.learning_rate.cosine.initial_learning_rate'


def test_plan_runs_seed_by_seed_learned_patches_before_fixed_ones():
  plan = mp.Plan(['data/a', 'data/b/'], ['predictor', 'bn+predictor'],
                 [0.2, 1.0], [0, 1])
  assert plan.methods() == ['full', 'spot@0.2', 'spot@1', 'predictor',
                            'bn+predictor']
  keys = plan.keys()
  assert len(keys) == len(set(keys)) == 2 * 5 * 2 and keys[:11] == [
      ('a', 'full', 0), ('a', 'spot@0.2', 0), ('a', 'spot@1', 0),
      ('b', 'full', 0), ('b', 'spot@0.2', 0), ('b', 'spot@1', 0),
      ('a', 'predictor', 0), ('b', 'predictor', 0),
      ('a', 'bn+predictor', 0), ('b', 'bn+predictor', 0), ('a', 'full', 1)]
  assert rows.spot_lambda('spot@0.05') == 0.05
  assert rows.spot_lambda('bn+predictor') is None
  assert mp.chunk_ends(3000, 500) == [500, 1000, 1500, 2000, 2500, 3000]
  assert mp.chunk_ends(5, 2) == [2, 4, 5]


def test_csv_round_trips(tmp_path):
  path = str(tmp_path / 'runs.csv')
  runs = [rows.Run('t', 'full', 0, 0.61, 0.81, 0.6, 1000, 100.0, 4000, None,
                   10, 1.5),
          rows.Run('t', 'spot@0.2', 0, 0.58, 0.78, 0.57, 100, 10.0, 400, 3,
                   10, 1.5),
          rows.Run('t', 'base', 0, 0.5, 0.6, None, 10, 100.0, 40, None, 0,
                   0.0)]  # A given base: no val AP.
  for run in runs:
    mp.open_log(path).append(run)
  assert mp.read_runs(path) == runs
  curve = [rows.CurvePoint(500, 0.2, 0.4, 0.21, 60.0),
           rows.CurvePoint(1000, 0.25, 0.45, 0.26, 61.5)]
  for point in curve:
    mp.open_curve(str(tmp_path / 'curve.csv')).append(point)
  assert mp.read_curve(str(tmp_path / 'curve.csv')) == curve


def test_run_configs_share_data_and_schedule(composites):
  settings = mp.Settings(patch_override=f'{LR}=0.01',
                         spot_override='task.gates.initial_logit=1.0',
                         spot_granularity='block')
  full, fixed, spot = (mp.run_config(composites, m, 3, 40, '/base', settings)
                       for m in ('full', 'bn+head_convs+predictor', 'spot@0.2'))
  assert type(full.task) is retinanet_cfg.RetinaNetTask  # pylint: disable=unidiomatic-typecheck
  assert type(fixed.task) is retinanet_cfg.PatchedRetinaNetTask  # pylint: disable=unidiomatic-typecheck
  assert isinstance(spot.task, retinanet_cfg.SpotPatchedRetinaNetTask)
  assert fixed.task.patch == 'bn+head_convs+predictor'
  assert spot.task.patch == 'bn+predictor'
  assert (spot.task.gates.size_weight, spot.task.gates.temperature_steps,
          spot.task.gates.granularity, spot.task.gates.initial_logit) == (
              0.2, 40, 'block', 1.0)
  rates = [p.trainer.optimizer_config.learning_rate.cosine
           for p in (full, fixed, spot)]
  assert [r.initial_learning_rate for r in rates] == [0.002, 0.01, 0.01]
  for params in (full, fixed, spot):
    assert params.task.init_checkpoint == '/base'
    assert params.task.train_data.seed == 3
    assert params.task.train_data.input_path.endswith('train-*')
    assert params.task.validation_data.input_path.endswith('val-*')
    assert params.trainer.train_steps == 40
  with pytest.raises(ValueError, match=r'--spot_override.*task.gates.x'):
    mp.run_config(composites, 'spot@1', 0, 40, '/base',
                  mp.Settings(spot_override='task.gates.x=1'))


def test_bad_task_folders_and_flags_are_named(tmp_path, composites):
  no_test = tmp_path / 'no_test'
  no_test.mkdir()
  for name in os.listdir(composites):
    if name.startswith(('train-', 'val-')):
      os.symlink(os.path.join(composites, name), no_test / name)
  with pytest.raises(ValueError, match=r'no_test has no test-\*'):
    mp.check_task_folder(str(no_test))
  many = tmp_path / 'many'
  many.mkdir()
  for name in os.listdir(composites):
    if name.endswith('.tfrecord'):
      os.symlink(os.path.join(composites, name), many / name)
  (many / 'label_map.json').write_text(json.dumps({'1': 'a', '7': 'b'}))
  with pytest.raises(ValueError, match=r'label_map.json: label 7'):
    mp.check_task_folder(str(many))
  base = mp.Base(checkpoint='/base')
  for plan, settings, message in (
      (mp.Plan([composites], spot_lambdas=[-1.0]), mp.Settings(),
       '--spot_lambdas'),
      (mp.Plan([composites]), mp.Settings(spot_granularity='net'),
       '--spot_granularity'),
      (mp.Plan([composites], seeds=[0, 0]), mp.Settings(), '--seeds'),
      (mp.Plan([composites], ['bn+towers']), mp.Settings(), "'bn\\+towers'"),
      (mp.Plan([str(no_test)]), mp.Settings(), 'no test-')):
    with pytest.raises(ValueError, match=message):
      mp.study(str(tmp_path / 'out'), plan, base, settings)
  with pytest.raises(ValueError, match='Give --base_checkpoint, or'):
    mp.study(str(tmp_path / 'out'), mp.Plan([composites]), mp.Base())
  with pytest.raises(ValueError, match=(
      '--backbone_checkpoint: needed to train the base .*out/base keeps')):
    mp.study(str(tmp_path / 'out'), mp.Plan([composites]), mp.Base(
        task=composites))
  with pytest.raises(ValueError, match=r"--record_only_tasks: \['trees'\]"):
    mp.study(str(tmp_path / 'out'), mp.Plan([composites]), base,
             record_only=['trees'])
  with pytest.raises(ValueError, match='--summary_only: no runs.csv in'):
    mp.study(str(tmp_path / 'out'), mp.Plan([composites]), base,
             summary_only=True)


def test_summary_only_writes_the_reports_and_trains_nothing(
    tmp_path, composites, monkeypatch):
  out = tmp_path / 'study'
  out.mkdir()
  log = mp.open_log(str(out / 'runs.csv'))
  for method, ap, percent in (('full', 0.6, 100.0), ('spot@0.2', 0.59, 9.0)):
    log.append(rows.Run('tops_on_photos', method, 0, ap, 0.8, ap, 9, percent,
                        36, None, 400, 1.0))
  monkeypatch.setattr(mp.training, 'run', lambda *a, **k: pytest.fail(
      '--summary_only trained or evaluated.'))
  runs = mp.study(str(out), mp.Plan([composites], [], [0.2], [0, 1]),
                  mp.Base(checkpoint='/base'), record_only=['tops_on_photos'],
                  summary_only=True)
  assert [r.method for r in runs] == ['full', 'spot@0.2']
  summary = (out / 'summary.md').read_text()
  assert '**Partial study**: 2 of 4 planned runs have no row yet' in summary
  assert '## tops_on_photos (outside the targets)' in summary
  assert (out / 'ap_vs_patch_size.png').stat().st_size > 0


def test_task_rows_of_another_schedule_are_refused(tmp_path, composites):
  out = tmp_path / 'study'
  out.mkdir()
  log = mp.open_log(str(out / 'runs.csv'))
  for task, method, steps in (('base_clothing', 'base', 3000),
                              ('tops_on_photos', 'full', 400),
                              ('tops_on_photos', 'spot@0.2', 1200)):
    log.append(rows.Run(task, method, 0, 0.6, 0.8, 0.6, 9, 100.0, 36, None,
                        steps, 1.0))
  with pytest.raises(ValueError, match=(
      r'runs.csv: 1 task rows were trained for \[400\] steps, not '
      r'--steps=1200 \(first: tops_on_photos/full/seed 0\)')):
    mp.study(str(out), mp.Plan([composites], steps=1200),
             mp.Base(checkpoint='/base'))


def test_base_trains_in_chunks_and_resumes(tmp_path, composites, monkeypatch):
  trained, killed = [], []

  def fake_train_and_test(params, folder, key, model_dir, patch_path):
    steps = params.trainer.train_steps
    if steps == 4 and not killed:  # The first session dies after chunk 2.
      killed.append(steps)
      raise RuntimeError('killed')
    assert (folder, key, patch_path) == (composites, ('tops_on_photos',
                                                      'base', steps), None)
    assert params.task.init_checkpoint_modules == 'backbone'
    assert params.task.train_data.seed == steps  # A new order per chunk.
    assert params.trainer.optimizer_config.learning_rate.cosine.decay_steps \
        == 5  # One schedule over the whole base.
    trained.append(steps)
    if steps == 5:  # The last chunk's checkpoint becomes the kept base.
      model = task_factory.get_task(params.task).build_model()
      model(tf.zeros([1, 64, 64, 3]), training=False)
      tf.train.Checkpoint(model=model, **model.checkpoint_items).save(
          os.path.join(model_dir, 'ckpt'))
    return rows.Run(*key, steps / 100, 0.5, 0.1, 9, 100.0, 36, None, steps,
                  10.0)

  monkeypatch.setattr(mp, 'train_and_test', fake_train_and_test)
  monkeypatch.setattr(mp, '_built_weights', lambda params: {
      'parameters': 9, 'percent': 100.0, 'file_bytes': 36, 'gates_on': None})
  out = str(tmp_path / 'study')
  base = mp.Base(task=composites, backbone_checkpoint='/backbone', steps=5,
                 eval_every=2)
  small = mp.Settings(params_override='task.model.input_size=[64,64,3]')
  with pytest.raises(RuntimeError, match='killed'):
    mp.study(out, mp.Plan([]), base, small)
  mp.study(out, mp.Plan([]), base, small)
  assert trained == [2, 4, 5]  # Chunk 2 ran once.
  assert [p.steps for p in mp.read_curve(os.path.join(out, 'base_curve.csv'))
          ] == [2, 4, 5]
  assert mp.read_runs(os.path.join(out, 'runs.csv')) == [rows.Run(
      'tops_on_photos', 'base', 0, 0.05, 0.5, 0.1, 9, 100.0, 36, None, 5,
      30.0)]
  summary = open(os.path.join(out, 'summary.md')).read()
  assert 'Trained here: 5 steps in 3 chunks, 0.5 min.' in summary
  assert "Last chunk's AP gain: +0.010 (>= 0.01: still rising)." in summary
  # The base's last checkpoint, kept as weights alone outside runs/.
  kept = os.path.join(out, 'base', 'weights')
  last = tf.train.latest_checkpoint(os.path.join(out, 'runs', 'base'))
  names = [n for n, _ in tf.train.list_variables(kept)
           if n != '_CHECKPOINTABLE_OBJECT_GRAPH']
  assert names
  for name in names:
    np.testing.assert_array_equal(tf.train.load_variable(kept, name),
                                  tf.train.load_variable(last, name))
  # Task runs start from it: Model Garden's RetinaNet initialisation, as
  # full fine-tuning and fixed patches use it, and a learned patch's.
  for method in ('full', 'predictor', 'spot@0.2'):
    params = mp.run_config(composites, method, 0, 5, kept, small)
    task = task_factory.get_task(params.task)
    model = task.build_model()
    model(tf.zeros([1, 64, 64, 3]), training=False)
    task.initialize(model)
  # On another machine runs/ is gone: the study goes on from the kept base.
  shutil.rmtree(os.path.join(out, 'runs'))
  assert mp.study(out, mp.Plan([]), base, small)[0].ap == 0.05
  # ... and needs no backbone checkpoint (`make patch-study` gives none
  # once the base is kept).
  assert mp.study(out, mp.Plan([]), mp.Base(task=composites, steps=5,
                                            eval_every=2), small)[0].ap == 0.05
  assert trained == [2, 4, 5]  # Finished: nothing trains again.
  # Without either, training a new base under the old one's rows would mix
  # two bases, so the study stops.
  shutil.rmtree(os.path.join(out, 'base'))
  with pytest.raises(FileNotFoundError, match='move runs.csv and '):
    mp.study(out, mp.Plan([]), base, small)
  assert trained == [2, 4, 5]


def test_small_study_end_to_end_and_resume(tmp_path, composites, caplog,
                                           monkeypatch):
  small = ('task.model.input_size=[64,64,3],task.train_data.global_batch_size=4,'
           + conftest.SMALL_HEAD_OVERRIDE)
  params = exp_factory.get_exp_config('mnv4_retinanet_composites')
  params.override({'task': {'model': {'input_size': [64, 64, 3],
                                      'head': conftest.SMALL_HEAD}}})
  base = task_factory.get_task(params.task).build_model()
  base(tf.zeros([1, 64, 64, 3]), training=False)
  base_path = tf.train.Checkpoint(**base.checkpoint_items).save(
      str(tmp_path / 'base' / 'ckpt'))
  out = str(tmp_path / 'study')
  # No fixed patch: its run takes the learned patch's path (a patch file,
  # `_patch_weights`); test_base_trains_in_chunks_and_resumes starts one
  # from the base.
  plan = mp.Plan([composites], [], [0.2], [0], steps=2)
  given = mp.Base(checkpoint=base_path, task=composites)
  settings = mp.Settings(params_override=small)
  with caplog.at_level(logging.INFO, logger='absl'):
    runs = mp.study(out, plan, given, settings)
  # Each of the two runs starts from the base, and so does the given
  # base's own evaluation (test evaluations restore their run's checkpoint).
  assert caplog.text.count(
      f'Finished loading pretrained checkpoint from {base_path}') == 3
  assert [(r.task, r.method, r.seed) for r in runs] == [
      ('tops_on_photos', 'base', 0), ('tops_on_photos', 'full', 0),
      ('tops_on_photos', 'spot@0.2', 0)]
  _, full, spot = runs
  assert full.file_bytes == 4 * patches.count_parameters(base.weights)
  assert spot.parameters < full.parameters
  assert spot.gates_on is not None and full.gates_on is None
  assert all(np.isfinite([r.ap, r.ap50]).all() for r in runs)
  assert all(r.val_ap is not None for r in runs[1:])
  patch_dir = os.path.join(out, 'patches', 'tops_on_photos', 'seed0')
  assert spot.file_bytes == os.path.getsize(
      os.path.join(patch_dir, 'spot@0.2.npz'))
  assert patches.load(base, os.path.join(patch_dir, 'spot@0.2.npz')) == (
      'bn', 'predictor')
  for name in ('summary.md', 'ap_vs_patch_size.png'):
    assert os.path.getsize(os.path.join(out, name)) > 0
  assert 'Fewer than 3 seeds' in open(os.path.join(out, 'summary.md')).read()
  # A second call trains nothing; a lost patch file comes back, equal,
  # from its run's checkpoint.
  spot_file = os.path.join(patch_dir, 'spot@0.2.npz')
  saved = dict(np.load(spot_file))
  os.remove(spot_file)
  monkeypatch.setattr(mp.training, 'run', lambda *a, **k: pytest.fail(
      'A finished run trained or evaluated again.'))
  assert mp.study(out, plan, given, settings) == runs
  again = np.load(spot_file)
  assert sorted(again.files) == sorted(saved)
  for key in saved:
    if key != '__meta__':  # Holds variable names, which may differ.
      np.testing.assert_array_equal(again[key], saved[key])
  # A patch file whose run folder is gone too (another machine) stays
  # missing: its row keeps the numbers, and the study still finishes.
  os.remove(spot_file)
  shutil.rmtree(os.path.join(out, 'runs', 'tops_on_photos', 'spot@0.2'))
  assert mp.study(out, plan, given, settings) == runs
  assert not os.path.exists(spot_file)
