"""Label-granularity study: Choe et al.'s protocol, report, tiny real run."""
import os

import pytest
import tensorflow as tf

from tests import conftest
from univision import registry_imports  # pylint: disable=unused-import
from univision.data import wsol_parts
from univision.studies import label_granularity as lg
from univision.studies import label_granularity_report as report

SMALL = ('task.model.input_size=[64,64,3],'
         'task.train_data.global_batch_size=4,'
         'task.validation_data.global_batch_size=4,'
         'task.evaluation.num_thresholds=20')


@pytest.fixture(scope='module')
def parts_data(tmp_path_factory):
  folder = tmp_path_factory.mktemp('parts')
  source = conftest.make_fake_fashion_mnist(str(folder / 'src'), num_test=96)
  wsol_parts.build(str(folder / 'data'), num_train=10, num_eval=4,
                   image_size=64, object_size=(24, 48), source_dir=source)
  return str(folder / 'data')


def test_run_config_trains_the_level_and_validates_on_val(parts_data):
  params = lg.run_config(parts_data, 'shape', 'adl', 30, 1)
  assert params.task.model.num_classes == 10
  assert params.task.label_level == 'shape' and params.task.method == 'adl'
  assert params.task.validation_data.input_path.endswith('val-*')
  assert params.task.hierarchy_path == os.path.join(parts_data,
                                                    'hierarchy.json')
  assert params.task.model.backbone.mobilenet_v4.output_stride == 8
  assert params.task.init_checkpoint == ''  # Random start.
  assert params.task.train_data.seed == 1
  assert params.trainer.optimizer_config.learning_rate.cosine.decay_steps == 30
  assert lg.run_config(parts_data, 'marked', 'cam', 30, 0).task.model \
      .num_classes == 30
  with pytest.raises(ValueError, match="Unknown label level 'genus'"):
    lg.run_config(parts_data, 'genus', 'cam', 30, 0)
  with pytest.raises(ValueError, match='has no train'):
    lg.run_config(str(os.path.dirname(parts_data)), 'shape', 'cam', 30, 0)
  for method, candidates in lg.CANDIDATES.items():  # Every override parses.
    for overrides in candidates.values():
      lg.run_config(parts_data, 'family', method, 30, 0, overrides)


def test_subset_is_the_first_records_nested_and_written_once(parts_data,
                                                             tmp_path):
  every = [r.numpy() for r in tf.data.TFRecordDataset(
      sorted(tf.io.gfile.glob(os.path.join(parts_data, 'train-*'))))]
  small = lg.subset(parts_data, 0.2, str(tmp_path))
  large = lg.subset(parts_data, 0.5, str(tmp_path))
  read = lambda p: [r.numpy() for r in tf.data.TFRecordDataset(
      tf.io.gfile.glob(p))]
  assert read(small) == every[:2] and read(large) == every[:5]
  path = tf.io.gfile.glob(small)[0]
  stamp = os.path.getmtime(path)
  lg.subset(parts_data, 0.2, str(tmp_path))
  assert os.path.getmtime(path) == stamp


def _row(level, method, seed, value, fraction=1.0, **extra):
  metrics = dict.fromkeys(lg.METRICS, 50.0)
  metrics.update(accuracy=0.5, MaxBoxAccV2=value, PxAP=value / 2)
  return {'level': level, 'method': method, 'seed': seed,
          'fraction': fraction, 'candidate': 'c', **metrics,
          'val_MaxBoxAccV2': value, 'threshold': 0.3, 'steps': 1,
          'seconds': 1.0, **extra}


def test_report_compares_the_range_over_levels_with_the_range_over_methods():
  # Levels move MaxBoxAccV2 by 20 (best method cam); methods by 4.
  runs = [_row('marked', 'cam', s, 40.0 + s) for s in (0, 1)] + [
      _row('marked', 'has', s, 37.0) for s in (0, 1)] + [
      _row('family', 'cam', s, 60.0 + s) for s in (0, 1)] + [
      _row('family', 'has', s, 56.5) for s in (0, 1)] + [
      _row('family', 'cam', 0, 30.0, fraction=0.1)]
  found = report.ranges(runs, 'MaxBoxAccV2')
  assert found == {'best_method': 'cam', 'best_level': 'family',
                   'over_levels': 20.0, 'over_methods': 4.0}
  search = [{'level': 'marked', 'method': 'cam', 'candidate': 'lr1',
             'MaxBoxAccV2': 41.0}]
  text = report.summary_markdown(runs, search, {('marked', 'cam'): 'lr1'},
                                 ['marked/cam/seed 2'])
  assert '| marked | cam | lr1 | 2 | 50.0 ± 0.0 | 40.5 ± 0.7 |' in text
  assert ('over label levels (best method, cam) the mean moves by 20.0 '
          'points; over methods (best level, family) by 4.0: **the label '
          'level matters more** here.') in text
  assert '| family | cam | 0.1 | 1 | 50.0 | 30.0 | 15.0 |' in text
  assert '| family | cam | 1 | 2 |' in text
  assert '| marked | cam | lr1 | 41.0 | yes |' in text
  assert 'Missing runs (study in progress): marked/cam/seed 2.' in text
  assert report.ranges(runs[:2], 'MaxBoxAccV2') is None


def test_protocol_chooses_on_val_tests_once_and_resumes(parts_data, tmp_path,
                                                        monkeypatch):
  trained, tested, killed = [], [], []
  val = {('marked', 'lr0.002'): 30.0, ('marked', 'lr0.005'): 35.0,
         ('family', 'lr0.002'): 50.0, ('family', 'lr0.005'): 45.0}

  def fake_train(params, model_dir, seed):
    level = params.task.label_level
    lr = params.trainer.optimizer_config.learning_rate.cosine \
        .initial_learning_rate
    candidate = f'lr{lr:g}'
    if seed == 1 and level == 'family' and not killed:
      killed.append(model_dir)
      raise RuntimeError('killed')
    trained.append((level, candidate, seed,
                    params.task.train_data.input_path.endswith('train-*') and
                    'train_' not in params.task.train_data.input_path))
    metrics = dict.fromkeys(lg.METRICS, 10.0)
    metrics.update(MaxBoxAccV2=val[(level, candidate)] + seed,
                   best_threshold=0.25)
    return metrics, 2.0

  def fake_test(params, data, model_dir, threshold):
    tested.append((params.task.label_level, os.path.basename(
        os.path.dirname(model_dir)), threshold))
    metrics = dict.fromkeys(lg.METRICS, 20.0)
    return metrics

  monkeypatch.setattr(lg, '_train', fake_train)
  monkeypatch.setattr(lg, 'evaluate_test', fake_test)
  monkeypatch.setattr(lg, 'cam_rows', lambda *a: [])
  monkeypatch.setattr(lg, 'plot_cams', lambda overlays, path: None)
  monkeypatch.setitem(lg.CANDIDATES, 'cam', {
      'lr0.002': lg.CANDIDATES['cam']['lr0.002'],
      'lr0.005': lg.CANDIDATES['cam']['lr0.005']})
  plan = lg.Plan(['marked', 'family'], ['cam'], seeds=[0, 1], steps=2,
                 fractions=[0.5], overrides=SMALL)
  out = str(tmp_path / 'study')
  with pytest.raises(RuntimeError, match='killed'):
    lg.study(out, parts_data, plan)
  runs = lg.study(out, parts_data, plan)
  # Search: both candidates per level at seed 0; seed 0's final run is
  # the chosen search run (not trained again); seed 1 trains the choice.
  assert trained[:4] == [('marked', 'lr0.002', 0, True),
                         ('marked', 'lr0.005', 0, True),
                         ('family', 'lr0.002', 0, True),
                         ('family', 'lr0.005', 0, True)]
  assert trained[4:6] == [('marked', 'lr0.005', 1, True),
                          ('family', 'lr0.002', 1, True)]
  # Data efficiency: best level by val (family) then worst (marked), on
  # the 50% subset, every seed.
  assert trained[6:] == [('family', 'lr0.002', 0, False),
                         ('family', 'lr0.002', 1, False),
                         ('marked', 'lr0.005', 0, False),
                         ('marked', 'lr0.005', 1, False)]
  # Test: once per final run, at the val threshold.
  assert len(tested) == len(runs) == 8
  assert {t[2] for t in tested} == {0.25}
  assert [(r['level'], r['candidate'], r['seed'], r['fraction'])
          for r in runs[:4]] == [('marked', 'lr0.005', 0, 1.0),
                                 ('family', 'lr0.002', 0, 1.0),
                                 ('marked', 'lr0.005', 1, 1.0),
                                 ('family', 'lr0.002', 1, 1.0)]
  assert runs[0]['val_MaxBoxAccV2'] == 35.0 and runs[0]['MaxBoxAccV2'] == 20
  summary = (tmp_path / 'study' / 'summary.md').read_text()
  assert '| family | cam | lr0.002 | 2 |' in summary
  assert '## Data efficiency' in summary
  # Finished: a restart trains and tests nothing.
  assert lg.study(out, parts_data, plan) == runs
  assert len(trained) == 10 and len(tested) == 8
  with pytest.raises(ValueError, match="--methods: 'grad'"):
    lg.study(out, parts_data, lg.Plan(['marked'], ['grad']))
  with pytest.raises(ValueError, match='--fractions'):
    lg.study(out, parts_data, lg.Plan(['marked'], ['cam'], fractions=[1.5]))


def test_tiny_study_end_to_end(parts_data, tmp_path, monkeypatch):
  monkeypatch.setitem(lg.CANDIDATES, 'cam', {
      'lr0.002': lg.CANDIDATES['cam']['lr0.002']})
  out = str(tmp_path / 'study')
  # One level: the protocol over several (fake runs) is tested above.
  plan = lg.Plan(['family'], ['cam'], seeds=[0], steps=2, fractions=[],
                 overrides=SMALL)
  (run,) = lg.study(out, parts_data, plan, num_overlay_images=2)
  assert (run['level'], run['method']) == ('family', 'cam')
  for metric in ('MaxBoxAccV2', 'PxAP', 'part_cam_mass'):
    assert 0 <= run[metric] <= 100
  assert 0 < run['part_area'] < 20
  for name in ('localization.png', 'cams.png'):
    assert (tmp_path / 'study' / name).read_bytes()[:4] == b'\x89PNG'
  assert '| family | cam | lr0.002 | 1 |' in (
      tmp_path / 'study' / 'summary.md').read_text()
