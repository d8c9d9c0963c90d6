"""Label-granularity study: configs, summary, a tiny study end to end."""
import pytest

from tests import conftest
from univision import registry_imports  # pylint: disable=unused-import
from univision.data import wsol_composites
from univision.studies import label_granularity as lg

SMALL = ('task.model.input_size=[64,64,3],'
         'task.train_data.global_batch_size=4,'
         'task.validation_data.global_batch_size=4,'
         'task.evaluation.num_thresholds=20')


@pytest.fixture(scope='module')
def wsol_data(tmp_path_factory):
  folder = tmp_path_factory.mktemp('wsol')
  source = conftest.make_fake_fashion_mnist(str(folder / 'src'), num_test=96)
  wsol_composites.build(str(folder / 'data'), num_train=8, num_eval=4,
                        image_size=64, object_size=(20, 40), source_dir=source)
  return str(folder / 'data')


def test_run_config_sets_level_classes_and_evaluates_on_test(wsol_data):
  params = lg.run_config(wsol_data, 'coarse', 'adl', 30, 1, '/ckpt')
  assert params.task.model.num_classes == 4
  assert params.task.label_level == 'coarse' and params.task.method == 'adl'
  assert params.task.validation_data.input_path.endswith('test-*')
  assert params.task.train_data.seed == 1
  assert params.trainer.optimizer_config.learning_rate.cosine.decay_steps == 30
  assert lg.run_config(wsol_data, 'fine', 'cam', 30, 0, '').task.model.num_classes == 10
  with pytest.raises(ValueError, match="Unknown label level 'genus'"):
    lg.run_config(wsol_data, 'genus', 'cam', 30, 0, '')


def test_summary_means_over_seeds():
  base = {m: 50.0 for m in lg.METRICS}
  runs = [{**base, 'level': 'fine', 'method': 'cam', 'seed': 0,
           'accuracy': 0.5, 'MaxBoxAccV2': 40.0, 'steps': 1, 'seconds': 1.0},
          {**base, 'level': 'fine', 'method': 'cam', 'seed': 1,
           'accuracy': 0.7, 'MaxBoxAccV2': 60.0, 'steps': 1, 'seconds': 1.0}]
  text = lg.summary_markdown(runs)
  assert '| fine | cam | 2 | 60.0 ± 14.1 | 50.0 ± 14.1 | 50.0 ± 0.0 |' in text


def test_tiny_study_end_to_end_and_resume(wsol_data, tmp_path):
  out = str(tmp_path / 'study')
  runs = lg.study(out, wsol_data, '', ['fine', 'coarse'], ['cam'], steps=2,
                  overrides=SMALL, num_overlay_images=2)
  assert [(r['level'], r['method']) for r in runs] == [('fine', 'cam'),
                                                        ('coarse', 'cam')]
  for r in runs:
    assert 0 <= r['MaxBoxAccV2'] <= 100 and 0 <= r['PxAP'] <= 100
  for name in ('localization.png', 'cams.png'):
    assert (tmp_path / 'study' / name).read_bytes()[:4] == b'\x89PNG'
  assert '| coarse | cam | 1 |' in (tmp_path / 'study' / 'summary.md').read_text()
  assert lg.study(out, wsol_data, '', ['fine', 'coarse'], ['cam'], 2,
                  overrides=SMALL, num_overlay_images=2) == runs
  assert len(lg.read_runs(str(tmp_path / 'study' / 'runs.csv'))) == 2
  with pytest.raises(ValueError, match="--methods: 'grad'"):
    lg.study(out, wsol_data, '', ['fine'], ['grad'], 2, overrides=SMALL)
