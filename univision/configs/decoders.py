"""Decoder configs: Model Garden's `Decoder` one-of, plus `ssdlite`."""
import dataclasses

from official.modeling import hyperparams
from official.vision.configs import decoders


@dataclasses.dataclass
class SSDLite(hyperparams.Config):
  """SSDLite-style feature maps (`univision.modeling.decoders.ssdlite`).

  Attributes:
    num_filters: Channels of every level (projected backbone levels and the
      extra stride-2 levels).
  """
  num_filters: int = 128


@dataclasses.dataclass
class Decoder(decoders.Decoder):
  """Model Garden's decoder one-of with `ssdlite` added."""
  ssdlite: SSDLite = dataclasses.field(default_factory=SSDLite)
