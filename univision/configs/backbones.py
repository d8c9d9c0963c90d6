"""Backbone configs: Model Garden's `Backbone` one-of, plus univision's.

Added: `mobilenet_v4` (MobileNetV4), `hiera` (Hiera) and `vit_mae` (the MAE
ViT encoder as a classifier backbone).
"""
import dataclasses

from official.modeling import hyperparams
from official.vision.configs import backbones


@dataclasses.dataclass
class MobileNetV4(hyperparams.Config):
  """MobileNetV4 backbone config.

  Attributes:
    model_id: A model name only: one of MobileNetV4ConvSmall,
      MobileNetV4ConvMedium, MobileNetV4ConvLarge, MobileNetV4HybridMedium,
      MobileNetV4HybridLarge, or timm's width variants
      MobileNetV4ConvSmall035, MobileNetV4ConvSmall050,
      MobileNetV4HybridMedium075, MobileNetV4HybridLarge075 and
      anti-aliased MobileNetV4ConvAAMedium, MobileNetV4ConvBlurMedium,
      MobileNetV4ConvAALarge. Not used when `spec_file` is set.
    spec_file: Path of a block-spec table file
      (`univision.modeling.backbones.mobilenet_v4_spec_file`, e.g. written
      by the NAS search); '' builds `model_id`. Either way the table is
      resolved in one place, `mobilenet_v4.resolve_model_spec`.
    padding: 'same' (TensorFlow padding) or 'symmetric' (PyTorch padding,
      needed for weights converted from timm).
    stochastic_depth_drop_rate: Stochastic depth rate.
    flat_stochastic_depth_drop_rate: If False the rate grows linearly with
      block depth up to `stochastic_depth_drop_rate`.
    include_head: Whether to build the classification head (1x1 conv to
      960, pool, 1x1 conv to 1280; endpoint '6'). Detection and other dense
      tasks use only levels 2-5 and can leave it out.
    output_stride: 0 keeps the strides (32); 4, 8 or 16 stops downsampling
      there without dilation (e.g. 8 for finer WSOL class activation maps),
      and the levels past it are not endpoints. Weights load either way.
  """
  model_id: str = 'MobileNetV4ConvSmall'
  spec_file: str = ''
  padding: str = 'same'
  stochastic_depth_drop_rate: float = 0.0
  flat_stochastic_depth_drop_rate: bool = True
  include_head: bool = True
  output_stride: int = 0


@dataclasses.dataclass
class Hiera(hyperparams.Config):
  """Hiera backbone config.

  The input size (`model.input_size`) is fixed by the position embedding and
  must be a multiple of 32 per side (224 for the published models).

  Attributes:
    model_id: One of hiera_tiny, hiera_small, hiera_base, hiera_base_plus,
      hiera_large, hiera_huge.
    q_pool: Number of stage transitions that pool queries: 3 for
      classification, 2 for the MAE encoder.
    q_stride: Query pooling stride per side.
    mask_unit_size: Mask unit side in stage-1 tokens (8 = 32 px); the
      stages 1-2 attention window, and the MAE masking granularity.
    drop_path_rate: Stochastic depth rate of the last block (linear from 0).
    include_head: Whether to build the classification head (mean-pool +
      LayerNorm; endpoint '6'). Dense tasks use only levels 2-5.
  """
  model_id: str = 'hiera_tiny'
  q_pool: int = 3
  q_stride: int = 2
  mask_unit_size: int = 8
  drop_path_rate: float = 0.0
  include_head: bool = True


@dataclasses.dataclass
class ViTMAE(hyperparams.Config):
  """The MAE ViT encoder without masking (`modeling.backbones.vit_mae`).

  Its weights load from an MAE checkpoint of the same `size` (the
  `task.model.size` of the MAE experiment).

  Attributes:
    size: ViT size, a key of `univision.modeling.mae.VIT_SIZES` (tiny, base,
      large, huge); fixes width, depth, heads and patch.
    pooling: Features of endpoint '6': 'mean' of the patch tokens (MAE's
      fine-tuning) or the class 'token'.
  """
  size: str = 'tiny'
  pooling: str = 'mean'


@dataclasses.dataclass
class Backbone(backbones.Backbone):
  """Model Garden's backbone one-of with univision's backbones added."""
  mobilenet_v4: MobileNetV4 = dataclasses.field(default_factory=MobileNetV4)
  hiera: Hiera = dataclasses.field(default_factory=Hiera)
  vit_mae: ViTMAE = dataclasses.field(default_factory=ViTMAE)
