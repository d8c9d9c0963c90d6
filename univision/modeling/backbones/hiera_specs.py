"""Hiera architectures: a model table, expanded into one row per block.

Ryali et al., "Hiera: A Hierarchical Vision Transformer without the
Bells-and-Whistles", ICML 2023 (arXiv 2306.00989), as released in
facebookresearch/hiera and timm (`hiera_*_224`).

A model is four numbers: stage-1 width and heads, and the blocks per stage.
Every later stage doubles the width and the heads (`dim_mul = head_mul = 2`).
`block_specs` expands a model into rows that say, per block, what the paper's
text says in words:

* q-pooling: the first block of stages 2..q_pool+1 max-pools its queries
  (and its residual) over `q_stride x q_stride` tokens;
* mask-unit attention: stages 1-2 attend within mask units, stages 3-4
  globally, with a one-block lag: the first block of a stage still uses the
  previous stage's kind of attention (so the q-pooling block of stage 3 is
  mask-unit attention over 2x2-token units);
* `mask_unit_size`: the side of a mask unit in tokens, after the pooling done
  so far (8 -> 4 -> 2 -> 1 at 224 px).
"""
import dataclasses

NUM_STAGES = 4
# Stages that use mask-unit (local) attention; the rest attend globally.
MASK_UNIT_ATTENTION = (True, True, False, False)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """A whole Hiera model."""
  embed_dim: int  # Stage-1 width; doubles at each later stage.
  num_heads: int  # Stage-1 heads; doubles at each later stage.
  stages: tuple[int, int, int, int]  # Blocks per stage.


@dataclasses.dataclass(frozen=True)
class BlockSpec:
  """One Hiera block."""
  stage: int  # 1..4.
  dim: int  # Output width (the input width is the previous row's).
  num_heads: int
  q_stride: int  # Query pooling stride per side; 1 = no pooling.
  mask_unit_size: int  # Tokens per side of a mask unit, after pooling.
  mask_unit_attn: bool  # Mask-unit (True) or global (False) attention.


# Model ids follow timm's names without the `_224` resolution suffix.
MODEL_SPECS = {
    'hiera_tiny': ModelSpec(96, 1, (1, 2, 7, 2)),
    'hiera_small': ModelSpec(96, 1, (1, 2, 11, 2)),
    'hiera_base': ModelSpec(96, 1, (2, 3, 16, 3)),
    'hiera_base_plus': ModelSpec(112, 2, (2, 3, 16, 3)),
    'hiera_large': ModelSpec(144, 2, (2, 6, 36, 4)),
    'hiera_huge': ModelSpec(256, 4, (2, 6, 36, 4)),
}


def get_model_spec(model_id: str, key: str = 'model_id') -> ModelSpec:
  """The spec of `model_id`; a `ValueError` naming `key` and the known ids."""
  if model_id not in MODEL_SPECS:
    raise ValueError(f'{key}={model_id!r} is not a Hiera model; known ids: '
                     f'{", ".join(MODEL_SPECS)}.')
  return MODEL_SPECS[model_id]


def check_mask_unit_size(mask_unit_size: int, q_stride: int) -> None:
  """A mask unit must be q_stride**m tokens per side, 1 <= m <= 3.

  The unrolled token order (see `hiera_tokens.Unroll`) makes blocks of
  `q_stride**m` tokens contiguous for m <= NUM_STAGES - 1 only.
  """
  sizes = [q_stride**m for m in range(1, NUM_STAGES)]
  if q_stride < 2 or mask_unit_size not in sizes:
    raise ValueError(f'mask_unit_size={mask_unit_size} with q_stride='
                     f'{q_stride}: the mask unit side must be one of {sizes} '
                     '(a power of q_stride >= 2).')


def block_specs(spec: ModelSpec, q_pool: int = 3, q_stride: int = 2,
                mask_unit_size: int = 8) -> tuple[BlockSpec, ...]:
  """One row per block of `spec`.

  Args:
    spec: The model.
    q_pool: An `int` number of stage transitions that pool (3 for
      classification, 2 for the MAE encoder).
    q_stride: An `int` query pooling stride per side.
    mask_unit_size: An `int` mask unit side in stage-1 tokens.

  Returns:
    The block rows, in order.

  Raises:
    ValueError: if `q_pool` is not in 0..3, or the mask unit is not a power
      of `q_stride` or is pooled away while mask-unit attention still needs
      it.
  """
  if not 0 <= q_pool < NUM_STAGES:
    raise ValueError(f'q_pool={q_pool} must be in 0..{NUM_STAGES - 1}.')
  check_mask_unit_size(mask_unit_size, q_stride)
  rows = []
  unit = mask_unit_size
  for stage, depth in enumerate(spec.stages, start=1):
    scale = 2**(stage - 1)
    for index in range(depth):
      first = index == 0 and stage > 1
      pools = first and stage - 1 <= q_pool
      if pools:
        unit //= q_stride
      # The one-block lag: a stage's first block keeps the previous kind.
      local = MASK_UNIT_ATTENTION[stage - 2 if first else stage - 1]
      if local and unit < 1:
        raise ValueError(f'mask_unit_size={mask_unit_size} is pooled away '
                         f'before the mask-unit attention of stage {stage}; '
                         f'use at least {q_stride**min(q_pool, 2)}.')
      rows.append(BlockSpec(stage=stage, dim=spec.embed_dim * scale,
                            num_heads=spec.num_heads * scale,
                            q_stride=q_stride if pools else 1,
                            mask_unit_size=unit, mask_unit_attn=local))
  return tuple(rows)
