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
    include_head: Whether to build the classification head (1x1 conv to
      960, pool, 1x1 conv to 1280; endpoint '6'). Detection and other dense
      tasks use only levels 2-5 and can leave it out.
  """
  model_id: str = 'MobileNetV4ConvSmall'
  padding: str = 'same'
  stochastic_depth_drop_rate: float = 0.0
  flat_stochastic_depth_drop_rate: bool = True
  include_head: bool = True


@dataclasses.dataclass
class Backbone(backbones.Backbone):
  """Model Garden's backbone one-of with `mobilenet_v4` added."""
  mobilenet_v4: MobileNetV4 = dataclasses.field(default_factory=MobileNetV4)
