"""Backbone configs: Model Garden's `Backbone` one-of, plus `mobilenet_v4`."""
import dataclasses

from official.modeling import hyperparams
from official.vision.configs import backbones


@dataclasses.dataclass
class MobileNetV4(hyperparams.Config):
  """MobileNetV4 backbone config.

  Attributes:
    model_id: One of MobileNetV4ConvSmall, MobileNetV4ConvMedium,
      MobileNetV4ConvLarge, MobileNetV4HybridMedium, MobileNetV4HybridLarge.
    padding: 'same' (TensorFlow padding) or 'symmetric' (PyTorch padding,
      needed for weights converted from timm).
    stochastic_depth_drop_rate: Stochastic depth rate.
    flat_stochastic_depth_drop_rate: If False the rate grows linearly with
      block depth up to `stochastic_depth_drop_rate`.
  """
  model_id: str = 'MobileNetV4ConvSmall'
  padding: str = 'same'
  stochastic_depth_drop_rate: float = 0.0
  flat_stochastic_depth_drop_rate: bool = True


@dataclasses.dataclass
class Backbone(backbones.Backbone):
  """Model Garden's backbone one-of with `mobilenet_v4` added."""
  mobilenet_v4: MobileNetV4 = dataclasses.field(default_factory=MobileNetV4)
