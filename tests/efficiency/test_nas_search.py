"""Tests for the NAS search loop, its log and outputs, and the real proxy."""
import os
import random
import zlib

import pytest
import tf_keras
from official.vision.configs import common
from official.vision.modeling.backbones import factory

from univision import registry_imports  # pylint: disable=unused-import
from univision.core import config_parsing
from univision.efficiency import nas_log
from univision.efficiency import nas_loop
from univision.efficiency import nas_objective
from univision.efficiency import nas_proxy
from univision.efficiency import nas_search
from univision.efficiency import nas_space
from univision.modeling.backbones import mobilenet_v4_spec_file as spec_file

SPACE = nas_space.conv_small_space()


def fake_costs(spec) -> nas_objective.Costs:
  """Cheap stand-in costs: grow with width, expansion and kernels."""
  units = int(sum(b.filters * (b.expand_ratio + b.start_dw_kernel_size +
                               b.middle_dw_kernel_size)
                  for b in spec.blocks if b.block == 'uib'))
  return nas_objective.Costs(macs=units * 10_000, params=units,
                             latency_s=units * 1e-6)


class FakeProxy:
  """A deterministic accuracy per table; records what it trained."""

  def __init__(self):
    self.trained = []

  def __call__(self, spec, run_dir) -> float:
    self.trained.append(spec)
    return 0.5 + (zlib.crc32(repr(spec).encode()) % 1000) / 4000


def make_search(output_dir, seed=0, budget=nas_objective.Budget(),
                proxy=None):
  proxy = proxy or FakeProxy()
  objective = nas_loop.Objective(target_latency_s=8e-3, budget=budget)
  return nas_loop.Search(SPACE, objective, fake_costs, proxy,
                         str(output_dir), seed), proxy


def test_over_budget_candidates_are_logged_and_never_trained(tmp_path):
  budget = nas_objective.Budget(max_latency_s=8.5e-3)
  search, proxy = make_search(tmp_path, budget=budget)
  winners = search.run(coarse_trials=3, fine_trials=4, population=2)
  trials = nas_log.read(os.path.join(tmp_path, 'trials.csv'))
  rejected = [t for t in trials if t.status == nas_log.REJECTED]
  trained = [t for t in trials if t.status == nas_log.TRAINED]
  assert rejected, 'the budget should reject some candidates'
  assert all('latency' in t.reason and t.accuracy is None for t in rejected)
  assert all(t.latency_ms <= 8.5 for t in trained)
  assert all(fake_costs(s).latency_s <= 8.5e-3 for s in proxy.trained)
  assert len(proxy.trained) == len(trained) == 3 + 3  # Fine reuses coarse's.
  coarse, fine = winners[nas_space.COARSE], winners[nas_space.FINE]
  assert fine[1].reward >= coarse[1].reward  # Fine starts from coarse's.


def test_invalid_candidate_is_rejected_without_costing_or_training(tmp_path):
  search, proxy = make_search(tmp_path)
  search.cost_fn = None  # Would fail if called.
  bad = nas_space.Candidate((100, 128), (nas_space.IB_E4_K3,) * 12)
  trial = search.evaluate(nas_space.COARSE, bad)
  assert trial.status == nas_log.REJECTED and 'multiple of 8' in trial.reason
  assert trial.mmacs is None and not proxy.trained


def test_coarse_varies_filters_fine_varies_blocks(tmp_path):
  search, _ = make_search(tmp_path)
  coarse = search.run_phase(nas_space.COARSE, 4, 2)
  assert all(c.blocks == (nas_space.IB_E4_K3,) * 12 for c, _ in coarse)
  assert len({c.filters for c, _ in coarse}) == 4
  winner = max(coarse, key=lambda p: p[1].reward)[0]
  fine = search.run_phase(nas_space.FINE, 4, 2, base=winner)
  assert fine[0][0] == winner
  assert all(c.filters == winner.filters for c, _ in fine)
  assert len({c.blocks for c, _ in fine}) == 4


def test_search_is_deterministic_under_a_seed(tmp_path):
  keys = []
  for name, seed in (('a', 0), ('b', 0), ('c', 1)):
    search, _ = make_search(tmp_path / name, seed=seed)
    search.run(3, 3, 2)
    keys.append([t.key for t in nas_log.read(
        os.path.join(tmp_path / name, 'trials.csv'))])
  assert keys[0] == keys[1]
  assert keys[0] != keys[2]


def test_restarted_search_replays_its_log(tmp_path):
  search, _ = make_search(tmp_path)
  first = search.run(3, 3, 2)
  resumed, proxy = make_search(tmp_path)
  assert resumed.run(3, 3, 2) == first
  assert not proxy.trained
  assert len(nas_log.read(os.path.join(tmp_path, 'trials.csv'))) == len(
      search.trials)


def test_infeasible_budget_stops_with_a_clear_error(tmp_path):
  search, proxy = make_search(tmp_path, budget=nas_objective.Budget(
      max_macs=1.0))
  with pytest.raises(RuntimeError, match='coarse stage: only 0 of 2'):
    search.run(2, 2, 1)
  assert not proxy.trained


def test_changed_settings_refuse_to_resume(tmp_path):
  nas_search.check_settings(str(tmp_path), {'seed': 0, 'profile': 'cpu'})
  nas_search.check_settings(str(tmp_path), {'seed': 0, 'profile': 'cpu'})
  with pytest.raises(ValueError, match=r"search.json: .*seed: 0 -> 1"):
    nas_search.check_settings(str(tmp_path), {'seed': 1, 'profile': 'cpu'})


def test_real_proxy_trains_and_results_build_from_yaml(
    tmp_path, fake_fmnist_tfrecords):
  """The winner trains through the task, and its recipe builds it."""
  base = nas_space.Candidate((64, 96), (nas_space.IB_E4_K3,) * 12)
  candidate = SPACE.mutate(nas_space.FINE, base, random.Random(0))
  settings = nas_proxy.ProxySettings(data=fake_fmnist_tfrecords, steps=2,
                                     eval_batches=1)
  objective = nas_loop.Objective(target_latency_s=1e-3)
  search = nas_loop.Search(
      SPACE, objective, fake_costs,
      lambda spec, run_dir: nas_proxy.train_accuracy(spec, run_dir, settings),
      str(tmp_path))
  trial = search.evaluate(nas_space.FINE, candidate)
  assert trial.status == nas_log.TRAINED and 0 <= trial.accuracy <= 1
  run_dir = tmp_path / 'runs' / candidate.key
  assert spec_file.read(str(run_dir / 'spec.yaml')) == SPACE.to_model_spec(
      candidate)
  assert any(f.startswith('ckpt-2') for f in os.listdir(run_dir))

  winners = {nas_space.COARSE: (base, trial), nas_space.FINE: (candidate,
                                                               trial)}
  spec_path = nas_search.write_results(str(tmp_path), SPACE, winners,
                                       {'profile': 'fake'}, nas_proxy.RECIPE)
  recipe = os.path.join(tmp_path, os.path.basename(nas_proxy.RECIPE))
  params = config_parsing.parse_experiment(
      config_parsing.experiment_of(recipe), [recipe])
  backbone_config = params.task.model.backbone
  assert backbone_config.mobilenet_v4.spec_file == spec_path
  backbone = factory.build_backbone(
      input_specs=tf_keras.layers.InputSpec(
          shape=[None, 32, 32, 3]),
      backbone_config=backbone_config,
      norm_activation_config=common.NormActivation())
  assert backbone.model_spec == SPACE.to_model_spec(candidate)
  with open(os.path.join(tmp_path, 'summary.md')) as f:
    assert candidate.key in f.read()


def test_trial_log_round_trip(tmp_path):
  path = str(tmp_path / 'trials.csv')
  trials = [nas_log.Trial(0, 'coarse', 'k0', nas_log.TRAINED, '', 12.5, 7,
                          0.1234567891, 0.9, 0.88, 3.0),
            nas_log.Trial(1, 'fine', 'k1', nas_log.REJECTED, 'MACs 1M > x')]
  for t in trials:
    nas_log.append(path, t)
  assert nas_log.read(path) == trials
  with open(path, 'w') as f:
    f.write('a,b\n1,2\n')
  with pytest.raises(ValueError, match='trials.csv: columns'):
    nas_log.read(path)

