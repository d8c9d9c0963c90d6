"""Model-patch study: the rule, the files, one small study end to end."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from official.core import exp_factory
from official.core import task_factory

from univision import registry_imports  # pylint: disable=unused-import
from univision.configs import retinanet as retinanet_cfg
from univision.modeling import patches
from univision.studies import model_patches as mp


def _run(task, method, ap, parameters):
  return mp.Run(task, method, ap, ap + 0.1, parameters,
                100.0 * parameters / 1000, 4 * parameters, 10, 1.0)


RUNS = [_run('a', 'full', 0.50, 1000), _run('a', 'predictor', 0.40, 20),
        _run('a', 'bn+predictor', 0.46, 30), _run('a', 'head', 0.49, 600),
        _run('b', 'full', 0.30, 1000), _run('b', 'predictor', 0.10, 20),
        _run('c', 'base', 0.9, 1000)]


def test_rule_picks_the_smallest_patch_reaching_the_bar():
  choices = {c.task: c for c in mp.choose(RUNS, keep=0.9)}
  assert set(choices) == {'a', 'b'}  # 'c' has no full fine-tune.
  assert choices['a'].method == 'bn+predictor'  # 0.46 >= 0.45; 0.40 not.
  assert choices['a'].full_ap == 0.50 and choices['a'].parameters == 30
  assert choices['b'].method == 'full'  # No patch reaches 0.27.
  assert mp.choose(RUNS, keep=0.8)[0].method == 'predictor'


def test_csv_round_trip_summary_and_plot(tmp_path):
  path = str(tmp_path / 'runs.csv')
  for run in RUNS:
    mp.open_log(path).append(run)
  assert mp.read_runs(path) == RUNS
  choices = mp.choose(RUNS, 0.9)
  text = mp.summary_markdown(RUNS, choices, 0.9)
  assert '| a | bn+predictor | 3.00 | 120 | 0.460 | 0.560 | yes |' in text
  assert '| a | predictor | 2.00 | 80 | 0.400 | 0.500 |  |' in text
  shuffled = mp.summary_markdown(RUNS[::-1], choices, 0.9)
  rows = [l.split(' | ')[1] for l in shuffled.splitlines()
          if l.startswith('| a |')]
  assert rows == ['full', 'predictor', 'bn+predictor', 'head']
  mp.plot(RUNS, choices, str(tmp_path / 'plot.png'))
  assert (tmp_path / 'plot.png').read_bytes()[:4] == b'\x89PNG'


def test_every_run_of_a_task_shares_data_and_schedule(composites):
  full = mp.run_config(composites, 'full', 40, '/base')
  patch = mp.run_config(composites, 'bn+predictor', 40, '/base')
  assert isinstance(patch.task, retinanet_cfg.PatchedRetinaNetTask)
  assert not isinstance(full.task, retinanet_cfg.PatchedRetinaNetTask)
  assert patch.task.patch == 'bn+predictor'
  for params in (full, patch):
    assert params.task.init_checkpoint == '/base'
    assert params.task.init_checkpoint_modules == 'all'
    assert params.task.train_data.input_path.endswith('train-*')
    assert params.trainer.train_steps == 40
  assert full.trainer.optimizer_config.as_dict() == (
      patch.trainer.optimizer_config.as_dict())
  with pytest.raises(ValueError, match=r'unknown config key.*task.modle'):
    mp.run_config(composites, 'full', 40, '/base', params_override='task.modle.x=1')


def test_bad_task_folders_are_named(tmp_path, composites):
  empty = tmp_path / 'empty'
  empty.mkdir()
  with pytest.raises(ValueError, match=r'empty has no train-\*'):
    mp._check_task_folder(str(empty))  # pylint: disable=protected-access
  many = tmp_path / 'many'
  many.mkdir()
  for name in os.listdir(composites):
    if name.endswith('.tfrecord'):
      os.symlink(os.path.join(composites, name), many / name)
  (many / 'label_map.json').write_text(json.dumps({'1': 'a', '7': 'b'}))
  with pytest.raises(ValueError, match=r'label_map.json: label 7'):
    mp._check_task_folder(str(many))  # pylint: disable=protected-access


def test_small_study_end_to_end_and_resume(tmp_path, composites):
  small = 'task.model.input_size=[64,64,3],task.train_data.global_batch_size=4'
  params = exp_factory.get_exp_config('mnv4_retinanet_composites')
  params.override({'task': {'model': {'input_size': [64, 64, 3]}}})
  base = task_factory.get_task(params.task).build_model()
  base(tf.zeros([1, 64, 64, 3]), training=False)
  base_path = tf.train.Checkpoint(**base.checkpoint_items).save(
      str(tmp_path / 'base' / 'ckpt'))
  out = str(tmp_path / 'study')
  choices = mp.study(out, [composites], ['predictor'], steps=2, keep=0.9,
                     base_checkpoint=base_path, params_override=small)
  runs = mp.read_runs(os.path.join(out, 'runs.csv'))
  assert [(r.task, r.method) for r in runs] == [
      ('tops_on_photos', 'full'), ('tops_on_photos', 'predictor')]
  full, patch = runs
  assert patch.parameters < 0.05 * full.parameters
  patch_file = os.path.join(out, 'patches', 'tops_on_photos', 'predictor.npz')
  assert patch.file_bytes == os.path.getsize(patch_file)
  assert patches.load(base, patch_file) == ('predictor',)
  assert [c.task for c in choices] == ['tops_on_photos']
  for name in ('selection.csv', 'summary.md', 'ap_vs_patch_size.png'):
    assert os.path.getsize(os.path.join(out, name)) > 0
  # A second call finds every run done and trains nothing; a lost patch
  # file comes back, equal, from its run's checkpoint.
  saved = np.load(patch_file)
  saved = {k: saved[k] for k in saved.files}
  os.remove(patch_file)
  mp.study(out, [composites], ['predictor'], steps=2, keep=0.9,
           base_checkpoint=base_path, params_override=small)
  assert mp.read_runs(os.path.join(out, 'runs.csv')) == runs
  again = np.load(patch_file)
  assert sorted(again.files) == sorted(saved)
  for key in saved:
    if key != '__meta__':
      np.testing.assert_array_equal(again[key], saved[key])
  assert np.isfinite(full.ap)
