"""Tests for the NAS reward, hard budget and roofline costs."""
import dataclasses

import pytest

from univision.efficiency import hardware
from univision.efficiency import nas_objective
from univision.modeling.backbones import mobilenet_v4_specs as specs


def test_reward_on_hand_numbers():
  # On target: the accuracy itself.
  assert nas_objective.reward(0.8, 2e-3, 2e-3) == pytest.approx(0.8)
  # Twice the target: 0.8 * 2 ** -0.07 = 0.8 * 0.952638.
  assert nas_objective.reward(0.8, 4e-3, 2e-3) == pytest.approx(0.76211, 1e-4)
  # Half the target with alpha = -0.07: 0.8 * 2 ** 0.07 = 0.8 * 1.049717.
  assert nas_objective.reward(0.8, 1e-3, 2e-3) == pytest.approx(0.83977, 1e-4)
  # Hard-knee form (alpha 0, beta -1): free under target, 1/ratio over it.
  assert nas_objective.reward(0.8, 1e-3, 2e-3, 0.0, -1.0) == pytest.approx(0.8)
  assert nas_objective.reward(0.8, 8e-3, 2e-3, 0.0, -1.0) == pytest.approx(0.2)
  with pytest.raises(ValueError, match='target_latency_s=0'):
    nas_objective.reward(0.8, 1e-3, 0)


def test_budget_violations():
  costs = nas_objective.Costs(macs=300_000_000, params=1, latency_s=2e-3)
  assert nas_objective.Budget().violations(costs) == []
  assert nas_objective.Budget(3e8, 2e-3).violations(costs) == []  # Inclusive.
  assert nas_objective.Budget(2.5e8, 1e-3).violations(costs) == [
      'MACs 300.0M > budget 250.0M', 'latency 2.0000 ms > budget 1.0000 ms']


def test_measure_matches_the_known_conv_small_macs():
  profile = hardware.load_profile('edgetpu')
  costs = nas_objective.measure(specs.CONV_SMALL, profile, num_classes=1000)
  # fvcore on timm's Conv-S, no BN: 0.186 GMACs at 224 (seed_methods a.4).
  assert costs.macs / 1e9 == pytest.approx(0.186, rel=0.01)
  assert costs.params == 3_774_024
  smaller = nas_objective.measure(
      dataclasses.replace(specs.CONV_SMALL, resolution=112), profile, 1000)
  assert smaller.latency_s < costs.latency_s
  assert smaller.params == costs.params
