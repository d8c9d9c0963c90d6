"""Cost, hard budget and reward of NAS candidates (MobileNetV4 search).

Cost: the roofline latency (`roofline.model_time`) of the candidate's
classifier on a hardware profile at the deployment resolution, with its MACs
and trainable parameters.

Hard budget: a candidate over `max_macs` or `max_latency_s` is rejected
before it is trained.

Reward (MnasNet, Tan et al. 2019, the soft-constraint form the MobileNet
searches use):

  reward = accuracy * (latency / target_latency) ** w,
  w = alpha if latency <= target_latency else beta.

With alpha = beta = -0.07 (the default) a model twice as slow as the target
needs ~5% more accuracy (relative) to score the same; alpha = 0, beta = -1
makes the target a sharp knee. TuNAS's absolute-value reward is not used: it
needs a latency-matched supernet to pay off, and this search trains each
candidate alone.
"""
import dataclasses
import math

import tf_keras

from univision.efficiency import counting
from univision.efficiency import hardware
from univision.efficiency import roofline
from univision.modeling import classifiers
from univision.modeling.backbones import mobilenet_v4_specs as specs


@dataclasses.dataclass(frozen=True)
class Costs:
  """What a candidate costs at its deployment resolution."""
  macs: int
  params: int  # Trainable, classifier included.
  latency_s: float  # Roofline latency on the chosen profile.


@dataclasses.dataclass(frozen=True)
class Budget:
  """Hard limits; None leaves that quantity unconstrained."""
  max_macs: float | None = None
  max_latency_s: float | None = None

  def violations(self, costs: Costs) -> list[str]:
    """Which limits `costs` break, as readable reasons (empty if none)."""
    found = []
    if self.max_macs is not None and costs.macs > self.max_macs:
      found.append(f'MACs {costs.macs / 1e6:.1f}M > budget '
                   f'{self.max_macs / 1e6:.1f}M')
    if self.max_latency_s is not None and costs.latency_s > self.max_latency_s:
      found.append(f'latency {costs.latency_s * 1e3:.4f} ms > budget '
                   f'{self.max_latency_s * 1e3:.4f} ms')
    return found


def reward(accuracy: float, latency_s: float, target_latency_s: float,
           alpha: float = -0.07, beta: float = -0.07) -> float:
  """MnasNet's reward: accuracy times a latency factor around the target.

  Args:
    accuracy: The accuracy proxy, in [0, 1].
    latency_s: The candidate's latency.
    target_latency_s: The target latency (> 0).
    alpha: Exponent when the candidate meets the target.
    beta: Exponent when it is slower than the target.

  Returns:
    accuracy * (latency_s / target_latency_s) ** (alpha or beta).

  Raises:
    ValueError: for a non-positive latency or target.
  """
  if latency_s <= 0 or target_latency_s <= 0:
    raise ValueError(f'latency_s={latency_s} and target_latency_s='
                     f'{target_latency_s} must be positive.')
  ratio = latency_s / target_latency_s
  return accuracy * math.pow(ratio, alpha if ratio <= 1 else beta)


def measure(spec: specs.ModelSpec, profile: hardware.HardwareProfile,
            num_classes: int, resolution: int | None = None) -> Costs:
  """The costs of `spec`'s classifier on `profile`, batch 1.

  Args:
    spec: The block-spec table.
    profile: The hardware profile of the latency model.
    num_classes: Classes of the classifier (its last layer is costed too).
    resolution: Square input side; None uses `spec.resolution`.

  Returns:
    The costs.
  """
  resolution = resolution or spec.resolution
  model = classifiers.mobilenet_v4_classifier(
      'nas_candidate', num_classes, (resolution, resolution), model_spec=spec)
  records = roofline.layer_records(model, (1, resolution, resolution, 3),
                                   profile.weight_bytes,
                                   profile.activation_bytes)
  costs = Costs(macs=sum(r.macs for r in records),
                params=counting.count_params(model),
                latency_s=roofline.model_time(records, profile))
  tf_keras.backend.clear_session()
  return costs
