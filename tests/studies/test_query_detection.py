"""Query-detection study: settings, summary, one tiny study end to end."""
import pytest
import tensorflow as tf
from official.core import task_factory

from univision import registry_imports  # pylint: disable=unused-import
from univision.studies import query_detection as qd


def test_settings_parse_and_bad_ones_are_named():
  assert qd.parse_setting('film=') == ('film', '')
  assert qd.parse_setting('qw2=task.query.query_weight=2.0') == (
      'qw2', 'task.query.query_weight=2.0')
  for bad in ('film', '=x', 'a/b=x'):
    with pytest.raises(ValueError, match='--setting'):
      qd.parse_setting(bad)


def test_run_config_applies_seed_schedule_and_overrides(composites, tmp_path):
  params = qd.run_config(composites, '/ckpt', 40, 2,
                         'task.query.query_weight=2.0')
  assert params.task.train_data.seed == 2
  assert params.task.query.query_weight == 2.0
  assert params.task.init_checkpoint_modules == 'backbone'
  assert params.trainer.train_steps == 40
  assert params.trainer.optimizer_config.learning_rate.cosine.decay_steps == 40
  with pytest.raises(ValueError, match=r'unknown config key.*task.qurey'):
    qd.run_config(composites, '/ckpt', 40, 0, 'task.qurey.x=1')
  with pytest.raises(ValueError, match='has no train'):
    qd.run_config(str(tmp_path), '/ckpt', 40, 0)


def test_summary_pairs_the_heads_per_run():
  runs = [qd.Run('a', 0, 0.30, 0.20, 10, 1.0),
          qd.Run('a', 1, 0.10, 0.20, 10, 1.0),
          qd.Run('b', 0, 0.25, 0.50, 10, 1.0)]
  text = qd.summary_markdown(runs)
  # a: mean 0.2 / 0.2, differences +0.1 and -0.1 (sd 0.1414).
  assert '| a | 2 | 0.200 ± 0.141 | 0.200 ± 0.000 | 0.000 ± 0.141 | 1 of 2 |' in text
  assert '| b | 1 | 0.250 | 0.500 | -0.250 | 0 of 1 |' in text


def test_tiny_study_end_to_end_and_resume(composites, tmp_path):
  params = qd.run_config(composites, '', 2, 0)
  params.override({'task': {'model': {'input_size': [64, 64, 3]}}})
  # A backbone checkpoint for the runs to start from.
  model = task_factory.get_task(params.task).build_model()
  model(tf.zeros([1, 64, 64, 3]), training=False)
  backbone = tf.train.Checkpoint(backbone=model.backbone).save(
      str(tmp_path / 'backbone' / 'ckpt'))
  out = str(tmp_path / 'study')
  settings = ['small=task.model.input_size=[64,64,3],'
              'task.train_data.global_batch_size=4,'
              'task.validation_data.global_batch_size=4']
  runs = qd.study(out, composites, backbone, settings, replicates=2, steps=2)
  assert [(r.setting, r.seed) for r in runs] == [('small', 0), ('small', 1)]
  for r in runs:
    assert 0.0 <= r.query_head <= 1.0 and 0.0 <= r.filtered <= 1.0
  assert (tmp_path / 'study' / 'query_ap.png').read_bytes()[:4] == b'\x89PNG'
  assert '| small | 2 |' in (tmp_path / 'study' / 'summary.md').read_text()
  # Restarted: nothing is trained again, the rows stay as they were.
  assert qd.study(out, composites, backbone, settings, 2, 2) == runs
  assert len(qd.read_runs(str(tmp_path / 'study' / 'runs.csv'))) == 2
