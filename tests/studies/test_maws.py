"""MAWS study: stage configs, chaining, summary, micro pipeline + resume."""
import os

import numpy as np
import pytest
import tensorflow as tf
from official.core import task_factory

from univision import registry_imports  # pylint: disable=unused-import
from univision.configs import mae as mae_cfg
from univision.studies import maws
from univision.tasks import mae as mae_task

SMALL = ('task.train_data.global_batch_size=8,'
         'task.validation_data.global_batch_size=8,trainer.validation_steps=2')
MICRO_RUNS = ['mae', 'weak', 'finetune_maws', 'finetune_scratch']
MICRO_STEPS = {'mae': 2, 'weak': 2, 'finetune': 2}
RUNS = {r.name: r for r in maws.RUNS}


def test_run_configs_chain_folders_and_keep_the_yaml_file_patterns():
  weak = maws.run_config(RUNS['weak'], '/out', '/data', steps=30, seed=2)
  assert weak.task.init_checkpoint == '/out/runs/mae'
  assert weak.task.init_checkpoint_modules == 'backbone'
  assert weak.task.weak_labels.noise_rate == 0.2
  assert weak.task.train_data.input_path == '/data/train-*'
  assert weak.task.train_data.seed == 2
  assert weak.trainer.train_steps == 30
  assert weak.trainer.optimizer_config.learning_rate.cosine.decay_steps == 30
  assert weak.trainer.optimizer_config.warmup.linear.warmup_steps == 3
  finetune = maws.run_config(RUNS['finetune_maws'], '/out', '/data')
  assert finetune.task.init_checkpoint == '/out/runs/weak'
  assert finetune.task.train_data.input_path == (
      '/data/train-00000-of-00008.tfrecord')
  assert finetune.task.model.num_classes == 10
  assert finetune.trainer.train_steps == 300  # The YAML's.
  assert maws.run_config(RUNS['finetune_scratch'], '/out',
                         '/data').task.init_checkpoint == ''
  mae = maws.run_config(RUNS['mae'], '/out', '/data', steps=50)
  lr = mae.trainer.optimizer_config.learning_rate.cosine
  assert (lr.offset, lr.decay_steps) == (5, 45)
  assert mae.task.init_checkpoint == ''


def test_bad_run_selection_is_named(tmp_path):
  with pytest.raises(ValueError, match=r"--runs: unknown \['mea'\]"):
    maws.study(str(tmp_path), '/data', ['mea'])
  with pytest.raises(ValueError, match='finetune_maws starts from weak'):
    maws.study(str(tmp_path), '/data', ['mae', 'finetune_maws'])


def test_summary_lists_runs_and_finetuning_accuracies():
  rows = [{'run': 'mae', 'init_from': '', 'stage': 'mae', 'accuracy': None,
           'top_5_accuracy': None, 'validation_loss': 0.51, 'steps': 600,
           'seconds': 60.0},
          {'run': 'finetune_maws', 'init_from': 'weak', 'stage': 'finetune',
           'accuracy': 0.8123, 'top_5_accuracy': 0.99,
           'validation_loss': 0.7, 'steps': 300, 'seconds': 40.0}]
  text = maws.summary_markdown(rows)
  assert '| mae | mae | random |  |  | 0.5100 | 600 | 60 |' in text
  assert '| weak | 81.2 |' in text


@pytest.fixture(scope='module')
def micro_study(tmp_path_factory, fake_fmnist_tfrecords):
  out = str(tmp_path_factory.mktemp('maws'))
  rows = maws.study(out, fake_fmnist_tfrecords, MICRO_RUNS, MICRO_STEPS,
                    overrides=SMALL)
  return out, rows


def test_micro_pipeline_trains_every_stage(micro_study):
  out, rows = micro_study
  assert [r['run'] for r in rows] == MICRO_RUNS
  for row in rows:
    assert row['steps'] == 2 and np.isfinite(row['validation_loss'])
    assert tf.train.latest_checkpoint(
        os.path.join(out, 'runs', row['run'])).endswith('ckpt-2')
  assert rows[0]['accuracy'] is None  # MAE reports its loss only.
  for row in rows[1:]:
    assert 0.0 <= row['accuracy'] <= 1.0
  summary = open(os.path.join(out, 'summary.md')).read()
  assert '| finetune_maws | finetune | weak |' in summary


def test_micro_pipeline_weak_stage_starts_from_the_mae_run(
    micro_study, fake_fmnist_tfrecords):
  out, _ = micro_study
  params = maws.run_config(RUNS['weak'], out, fake_fmnist_tfrecords, 2,
                           overrides=SMALL)
  task = task_factory.get_task(params.task)
  model = task.build_model()
  task.initialize(model)
  mae_params = maws.run_config(RUNS['mae'], out, fake_fmnist_tfrecords)
  reference = mae_task.build_model(mae_params.task.model)
  tf.train.Checkpoint(model=reference).read(tf.train.latest_checkpoint(
      os.path.join(out, 'runs', 'mae'))).expect_partial()
  for mine, theirs in zip(model.backbone.weights, reference.encoder.weights):
    np.testing.assert_array_equal(mine, theirs)
  assert isinstance(mae_params.task, mae_cfg.MAETask)


def test_micro_pipeline_resumes_skipping_finished_runs(
    micro_study, fake_fmnist_tfrecords, monkeypatch):
  out, rows = micro_study
  csv_path = os.path.join(out, 'runs.csv')
  with open(csv_path) as f:
    lines = f.readlines()
  with open(csv_path, 'w') as f:  # As if the last run had not finished.
    f.writelines(lines[:-1])
  trained = []
  real_run = maws.training.run
  monkeypatch.setattr(maws.training, 'run', lambda params, model_dir, mode: (
      trained.append((os.path.basename(model_dir), mode)) or
      real_run(params, model_dir, mode)))
  again = maws.study(out, fake_fmnist_tfrecords, MICRO_RUNS, MICRO_STEPS,
                     overrides=SMALL)
  # Its final checkpoint exists: it is evaluated, not trained again.
  assert trained == [('finetune_scratch', 'eval')]
  assert again[:-1] == rows[:-1]
  assert again[-1]['accuracy'] == rows[-1]['accuracy']
  assert maws.study(out, fake_fmnist_tfrecords, MICRO_RUNS, MICRO_STEPS,
                    overrides=SMALL) == again
  assert len(trained) == 1
