"""MobileNetV4 architectures as block-spec tables, one row per block.

Qin et al., "MobileNetV4: Universal Models for the Mobile Ecosystem",
ECCV 2024 (arXiv 2404.10518), Tables 11-15, as released in TensorFlow Model
Garden (`official/vision/modeling/backbones/mobilenet.py`) and timm
(`mobilenetv4_*`); both releases agree row for row. MNv4-Hybrid-M as released
differs from the paper's Table 13 (stage 4 and 5 UIB order); the released
form is used because the published weights and parameter counts follow it.

Row helpers (kernel size 0 = that depthwise conv is absent):

* `conv(k, s, c)`: k x k conv + BN + act.
* `fused_ib(k, s, c, e)`: FusedIB, k x k expand conv then 1x1 projection.
* `uib(start_dw, middle_dw, s, c, e)`: Universal Inverted Bottleneck.
* `mqa(heads, dim, kv_strides)`: Mobile MQA block (keeps the channels).

Every model ends with the MobileNetV3-style head: 1x1 conv to 960, global
average pool, 1x1 conv to 1280 (both with BN + act).
"""
import dataclasses


@dataclasses.dataclass(frozen=True)
class BlockSpec:
  """One row of a block-spec table."""
  block: str  # 'conv', 'fused_ib', 'uib' or 'mqa'.
  strides: int = 1
  filters: int | None = None  # None: keeps the input channels (mqa).
  kernel_size: int = 0  # conv / fused_ib.
  start_dw_kernel_size: int = 0  # uib.
  middle_dw_kernel_size: int = 0  # uib.
  expand_ratio: float = 0.0  # fused_ib / uib.
  num_heads: int = 0  # mqa.
  key_dim: int = 0  # mqa (value dim is equal).
  kv_strides: int = 1  # mqa.


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """A whole MobileNetV4 model."""
  blocks: tuple[BlockSpec, ...]
  activation: str = 'relu'
  layer_scale_init_value: float | None = None  # Hybrids only.
  head_filters: tuple[int, int] = (960, 1280)
  resolution: int = 224  # The paper's ImageNet train/eval resolution.
  # Anti-aliased downsampling in the blocks' strided convs: '', 'avg' or
  # 'blur' (`layers.antialias`; timm's conv_aa_* and conv_blur_medium).
  antialias: str = ''



def make_divisible(value: float, divisor: int = 8,
                   round_limit: float = 0.9) -> int:
  """Nearest multiple of `divisor` (at least one), never below 90% of it."""
  rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
  return rounded + divisor if rounded < round_limit * value else rounded


def with_width(spec: ModelSpec, multiplier: float,
               resolution: int | None = None) -> ModelSpec:
  """`spec` with every block's channels times `multiplier`, as timm scales.

  timm's MobileNetV4 width variants (e.g. `mobilenetv4_conv_small_050`)
  round each block's output channels to a multiple of 8 (never below 90%
  of the product), and the head's 1x1 conv to 960 with them; the final
  1280-channel embedding, Mobile MQA's heads and key size are kept, and so
  is the stem for multipliers below 1. Expanded widths follow from the
  rounded input channels inside the blocks.
  """
  if multiplier <= 0:
    raise ValueError(f'Width multiplier {multiplier} must be positive.')
  blocks = [block if block.filters is None or (index == 0 and multiplier < 1)
            else dataclasses.replace(
                block, filters=make_divisible(block.filters * multiplier))
            for index, block in enumerate(spec.blocks)]
  head_conv, head_embed = spec.head_filters
  return dataclasses.replace(
      spec, blocks=tuple(blocks),
      head_filters=(make_divisible(head_conv * multiplier), head_embed),
      resolution=resolution or spec.resolution)


def with_output_stride(spec: ModelSpec, output_stride: int) -> ModelSpec:
  """`spec` whose blocks stop downsampling at `output_stride`.

  A block that would take the total stride past `output_stride` keeps its
  kernels but has stride 1, without dilation, as WSOL's reference
  ResNet-50 drops its last stage's stride for finer class activation maps
  (Choe et al., CVPR 2020). Weights keep their shapes, so checkpoints of
  the full-stride model load. A block that then keeps its channels gets the
  residual connection every stride-1 block of equal channels has.

  Raises:
    ValueError: unless `output_stride` is a power of two from 4 to 32.
  """
  if output_stride not in (4, 8, 16, 32):
    raise ValueError(f'output_stride {output_stride}: expected 4, 8, 16 or '
                     '32.')
  blocks, stride = [], 1
  for block in spec.blocks:
    if stride * block.strides > output_stride:
      block = dataclasses.replace(block, strides=1)
    stride *= block.strides
    blocks.append(block)
  return dataclasses.replace(spec, blocks=tuple(blocks))


def conv(k: int, s: int, c: int) -> BlockSpec:
  return BlockSpec('conv', strides=s, filters=c, kernel_size=k)


def fused_ib(k: int, s: int, c: int, e: float) -> BlockSpec:
  return BlockSpec('fused_ib', strides=s, filters=c, kernel_size=k,
                   expand_ratio=e)


def uib(start_dw: int, middle_dw: int, s: int, c: int, e: float) -> BlockSpec:
  return BlockSpec('uib', strides=s, filters=c, start_dw_kernel_size=start_dw,
                   middle_dw_kernel_size=middle_dw, expand_ratio=e)


def mqa(heads: int, dim: int, kv_strides: int) -> BlockSpec:
  return BlockSpec('mqa', num_heads=heads, key_dim=dim, kv_strides=kv_strides)


def repeat(n: int, spec: BlockSpec) -> tuple[BlockSpec, ...]:
  return (spec,) * n


# pylint: disable=bad-whitespace
CONV_SMALL = ModelSpec(resolution=224, blocks=(
    conv(3, 2, 32),                        # stem                 112px
    conv(3, 2, 32), conv(1, 1, 32),        # FusedIB as 2 convs    56px  L2
    conv(3, 2, 96), conv(1, 1, 64),        # FusedIB as 2 convs    28px  L3
    uib(5, 5, 2, 96, 3.0),                 # ExtraDW               14px
    *repeat(4, uib(0, 3, 1, 96, 2.0)),     # IB
    uib(3, 0, 1, 96, 4.0),                 # ConvNext                    L4
    uib(3, 3, 2, 128, 6.0),                # ExtraDW                7px
    uib(5, 5, 1, 128, 4.0),                # ExtraDW
    uib(0, 5, 1, 128, 4.0),                # IB
    uib(0, 5, 1, 128, 3.0),                # IB
    *repeat(2, uib(0, 3, 1, 128, 4.0)),    # IB                          L5
))

CONV_MEDIUM = ModelSpec(resolution=256, blocks=(
    conv(3, 2, 32),                        # stem
    fused_ib(3, 2, 48, 4.0),               #                             L2
    uib(3, 5, 2, 80, 4.0),                 # ExtraDW
    uib(3, 3, 1, 80, 2.0),                 # ExtraDW                     L3
    uib(3, 5, 2, 160, 6.0),                # ExtraDW
    *repeat(2, uib(3, 3, 1, 160, 4.0)),    # ExtraDW
    uib(3, 5, 1, 160, 4.0),                # ExtraDW
    uib(3, 3, 1, 160, 4.0),                # ExtraDW
    uib(3, 0, 1, 160, 4.0),                # ConvNext
    uib(0, 0, 1, 160, 2.0),                # FFN
    uib(3, 0, 1, 160, 4.0),                # ConvNext                    L4
    uib(5, 5, 2, 256, 6.0),                # ExtraDW
    uib(5, 5, 1, 256, 4.0),                # ExtraDW
    *repeat(2, uib(3, 5, 1, 256, 4.0)),    # ExtraDW
    uib(0, 0, 1, 256, 4.0),                # FFN
    uib(3, 0, 1, 256, 4.0),                # ConvNext
    uib(3, 5, 1, 256, 2.0),                # ExtraDW
    uib(5, 5, 1, 256, 4.0),                # ExtraDW
    *repeat(2, uib(0, 0, 1, 256, 4.0)),    # FFN
    uib(5, 0, 1, 256, 2.0),                # ConvNext                    L5
))

CONV_LARGE = ModelSpec(resolution=384, blocks=(
    conv(3, 2, 24),                        # stem
    fused_ib(3, 2, 48, 4.0),               #                             L2
    uib(3, 5, 2, 96, 4.0),                 # ExtraDW
    uib(3, 3, 1, 96, 4.0),                 # ExtraDW                     L3
    uib(3, 5, 2, 192, 4.0),                # ExtraDW
    *repeat(3, uib(3, 3, 1, 192, 4.0)),    # ExtraDW
    uib(3, 5, 1, 192, 4.0),                # ExtraDW
    *repeat(5, uib(5, 3, 1, 192, 4.0)),    # ExtraDW
    uib(3, 0, 1, 192, 4.0),                # ConvNext                    L4
    uib(5, 5, 2, 512, 4.0),                # ExtraDW
    *repeat(3, uib(5, 5, 1, 512, 4.0)),    # ExtraDW
    uib(5, 0, 1, 512, 4.0),                # ConvNext
    uib(5, 3, 1, 512, 4.0),                # ExtraDW
    *repeat(2, uib(5, 0, 1, 512, 4.0)),    # ConvNext
    uib(5, 3, 1, 512, 4.0),                # ExtraDW
    uib(5, 5, 1, 512, 4.0),                # ExtraDW
    *repeat(3, uib(5, 0, 1, 512, 4.0)),    # ConvNext                    L5
))

HYBRID_MEDIUM = ModelSpec(resolution=256, layer_scale_init_value=1e-5, blocks=(
    conv(3, 2, 32),                        # stem
    fused_ib(3, 2, 48, 4.0),               #                             L2
    uib(3, 5, 2, 80, 4.0),                 # ExtraDW
    uib(3, 3, 1, 80, 2.0),                 # ExtraDW                     L3
    uib(3, 5, 2, 160, 6.0),                # ExtraDW
    uib(0, 0, 1, 160, 2.0),                # FFN
    uib(3, 3, 1, 160, 4.0),                # ExtraDW
    uib(3, 5, 1, 160, 4.0),                # ExtraDW
    mqa(4, 64, 2), uib(3, 3, 1, 160, 4.0), # Mobile MQA, ExtraDW
    mqa(4, 64, 2), uib(3, 0, 1, 160, 4.0), # Mobile MQA, ConvNext
    mqa(4, 64, 2), uib(3, 3, 1, 160, 4.0), # Mobile MQA, ExtraDW
    mqa(4, 64, 2), uib(3, 0, 1, 160, 4.0), # Mobile MQA, ConvNext        L4
    uib(5, 5, 2, 256, 6.0),                # ExtraDW
    uib(5, 5, 1, 256, 4.0),                # ExtraDW
    *repeat(2, uib(3, 5, 1, 256, 4.0)),    # ExtraDW
    uib(0, 0, 1, 256, 2.0),                # FFN
    uib(3, 5, 1, 256, 2.0),                # ExtraDW
    uib(0, 0, 1, 256, 2.0),                # FFN
    uib(0, 0, 1, 256, 4.0),                # FFN
    mqa(4, 64, 1), uib(3, 0, 1, 256, 4.0), # Mobile MQA, ConvNext
    mqa(4, 64, 1), uib(5, 5, 1, 256, 4.0), # Mobile MQA, ExtraDW
    mqa(4, 64, 1), uib(5, 0, 1, 256, 4.0), # Mobile MQA, ConvNext
    mqa(4, 64, 1), uib(5, 0, 1, 256, 4.0), # Mobile MQA, ConvNext        L5
))

HYBRID_LARGE = ModelSpec(resolution=384, activation='gelu',
                         layer_scale_init_value=1e-5, blocks=(
    conv(3, 2, 24),                        # stem
    fused_ib(3, 2, 48, 4.0),               #                             L2
    uib(3, 5, 2, 96, 4.0),                 # ExtraDW
    uib(3, 3, 1, 96, 4.0),                 # ExtraDW                     L3
    uib(3, 5, 2, 192, 4.0),                # ExtraDW
    *repeat(3, uib(3, 3, 1, 192, 4.0)),    # ExtraDW
    uib(3, 5, 1, 192, 4.0),                # ExtraDW
    *repeat(2, uib(5, 3, 1, 192, 4.0)),    # ExtraDW
    mqa(8, 48, 2), uib(5, 3, 1, 192, 4.0), # Mobile MQA, ExtraDW
    mqa(8, 48, 2), uib(5, 3, 1, 192, 4.0), # Mobile MQA, ExtraDW
    mqa(8, 48, 2), uib(5, 3, 1, 192, 4.0), # Mobile MQA, ExtraDW
    mqa(8, 48, 2), uib(3, 0, 1, 192, 4.0), # Mobile MQA, ConvNext        L4
    uib(5, 5, 2, 512, 4.0),                # ExtraDW
    *repeat(3, uib(5, 5, 1, 512, 4.0)),    # ExtraDW
    uib(5, 0, 1, 512, 4.0),                # ConvNext
    uib(5, 3, 1, 512, 4.0),                # ExtraDW
    *repeat(2, uib(5, 0, 1, 512, 4.0)),    # ConvNext
    uib(5, 3, 1, 512, 4.0),                # ExtraDW
    uib(5, 5, 1, 512, 4.0),                # ExtraDW
    mqa(8, 64, 1), uib(5, 0, 1, 512, 4.0), # Mobile MQA, ConvNext
    mqa(8, 64, 1), uib(5, 0, 1, 512, 4.0), # Mobile MQA, ConvNext
    mqa(8, 64, 1), uib(5, 0, 1, 512, 4.0), # Mobile MQA, ConvNext
    mqa(8, 64, 1), uib(5, 0, 1, 512, 4.0), # Mobile MQA, ConvNext        L5
))
# pylint: enable=bad-whitespace

# Model ids are Model Garden's; the comment gives timm's name.
MODEL_SPECS = {
    'MobileNetV4ConvSmall': CONV_SMALL,  # mobilenetv4_conv_small
    'MobileNetV4ConvMedium': CONV_MEDIUM,  # mobilenetv4_conv_medium
    'MobileNetV4ConvLarge': CONV_LARGE,  # mobilenetv4_conv_large
    'MobileNetV4HybridMedium': HYBRID_MEDIUM,  # mobilenetv4_hybrid_medium
    'MobileNetV4HybridLarge': HYBRID_LARGE,  # mobilenetv4_hybrid_large
    # Width variants (timm only; no Model Garden id), the multiplier's digits
    # as in timm's name (0.35 -> 035).
    'MobileNetV4ConvSmall035': with_width(CONV_SMALL, 0.35),
    'MobileNetV4ConvSmall050': with_width(CONV_SMALL, 0.50),
    'MobileNetV4HybridMedium075': with_width(HYBRID_MEDIUM, 0.75, 224),
    'MobileNetV4HybridLarge075': with_width(HYBRID_LARGE, 0.75, 256),
    # Anti-aliased variants (timm only).
    'MobileNetV4ConvAAMedium': dataclasses.replace(  # mobilenetv4_conv_aa_medium
        CONV_MEDIUM, antialias='avg'),
    'MobileNetV4ConvBlurMedium': dataclasses.replace(  # ..._conv_blur_medium
        CONV_MEDIUM, antialias='blur', resolution=224),
    'MobileNetV4ConvAALarge': dataclasses.replace(  # mobilenetv4_conv_aa_large
        CONV_LARGE, antialias='avg'),
}


def get_model_spec(model_id: str, key: str = 'model_id') -> ModelSpec:
  """The spec of `model_id`; a `ValueError` naming `key` and the known ids."""
  if model_id not in MODEL_SPECS:
    raise ValueError(f'{key}={model_id!r} is not a MobileNetV4 model; known '
                     f'ids: {", ".join(MODEL_SPECS)}.')
  return MODEL_SPECS[model_id]
