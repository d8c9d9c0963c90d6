"""The search space of the MobileNetV4 NAS over UIB blocks.

MobileNetV4 (arXiv 2404.10518, Sec. 5) searches in two stages. Coarse: the
filters of each stage, every UIB fixed to an inverted bottleneck with
expansion 4 and a 3x3 middle depthwise conv. Fine: with those filters fixed,
each UIB's two optional depthwise convs (absent, 3x3 or 5x5, at the start
and in the middle) and, as our issue #9 asks, its expansion ratio (the paper
keeps 4; `expand_ratios=(4.0,)` gives its fine stage). The stem and FusedIB
rows and the head are fixed, as in the paper.

A candidate is valid when:
* every stage's filters are a multiple of 8 and one of its choices;
* every block's kernels and expansion are among the choices;
* a strided UIB keeps at least one depthwise conv: the stride sits on a
  depthwise conv, and a 1x1-only block (FFN) would just drop 3 of 4 pixels.
  A stride-1 UIB with no depthwise conv is the paper's FFN variant, allowed.
Sampling and mutation only produce valid candidates; `check` names what is
wrong with one that came from elsewhere (e.g. a resumed log). The hard cost
budget (MACs, latency) is in `nas_objective`.
"""
import dataclasses
import random

from univision.modeling.backbones import mobilenet_v4_specs as specs

COARSE, FINE = 'coarse', 'fine'
PHASES = (COARSE, FINE)


@dataclasses.dataclass(frozen=True)
class BlockChoice:
  """The searched fields of one UIB (kernel size 0: that conv is absent)."""
  start_dw_kernel_size: int
  middle_dw_kernel_size: int
  expand_ratio: float

  @property
  def code(self) -> str:
    """timm-style: `a` start DW kernel, `k` middle DW kernel, `e` expansion."""
    return (f'a{self.start_dw_kernel_size}k{self.middle_dw_kernel_size}'
            f'e{self.expand_ratio:g}')


IB_E4_K3 = BlockChoice(0, 3, 4.0)  # The coarse stage's fixed block.


@dataclasses.dataclass(frozen=True)
class SearchStage:
  """A run of UIB blocks with one filter count; only the first may stride."""
  strides: tuple[int, ...]
  filter_choices: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Candidate:
  """A point of the space: filters per stage, a choice per UIB block."""
  filters: tuple[int, ...]
  blocks: tuple[BlockChoice, ...]

  @property
  def key(self) -> str:
    """A readable id, e.g. `c96-128_a0k3e4-a5k5e6-...`."""
    return ('c' + '-'.join(map(str, self.filters)) + '_' +
            '-'.join(b.code for b in self.blocks))


@dataclasses.dataclass(frozen=True)
class SearchSpace:
  """Fixed rows, searchable UIB stages and the per-block choices.

  Attributes:
    fixed_rows: The stem / FusedIB rows before the searched stages.
    stages: The searched UIB stages, in order.
    dw_kernel_sizes: Choices of each optional depthwise conv (0 = absent).
    expand_ratios: Choices of each UIB's expansion ratio (fine stage).
    coarse_block: The block every UIB is during the coarse stage.
    activation: The model's activation.
    head_filters: The fixed MobileNetV3-style head.
    resolution: The resolution the spec is deployed (and costed) at.
  """
  fixed_rows: tuple[specs.BlockSpec, ...]
  stages: tuple[SearchStage, ...]
  dw_kernel_sizes: tuple[int, ...] = (0, 3, 5)
  expand_ratios: tuple[float, ...] = (2.0, 3.0, 4.0, 6.0)
  coarse_block: BlockChoice = IB_E4_K3
  activation: str = 'relu'
  head_filters: tuple[int, int] = (960, 1280)
  resolution: int = 224

  def __post_init__(self):
    for i, stage in enumerate(self.stages):
      bad = [f for f in stage.filter_choices if f <= 0 or f % 8]
      if bad or not stage.filter_choices:
        raise ValueError(f'stages[{i}].filter_choices={stage.filter_choices}:'
                         ' need positive multiples of 8.')
      if any(s != 1 for s in stage.strides[1:]) or stage.strides[0] not in (
          1, 2):
        raise ValueError(f'stages[{i}].strides={stage.strides}: only the '
                         'first block may have stride 2.')
    if not self.expand_ratios or min(self.expand_ratios) <= 0:
      raise ValueError(f'expand_ratios={self.expand_ratios}: need positive '
                       'numbers.')
    if any(k < 0 or (k and k % 2 == 0) for k in self.dw_kernel_sizes):
      raise ValueError(f'dw_kernel_sizes={self.dw_kernel_sizes}: need 0 or '
                       'odd sizes.')

  @property
  def block_strides(self) -> tuple[int, ...]:
    """The stride of each searched block, in order."""
    return tuple(s for stage in self.stages for s in stage.strides)

  def block_choices(self, strides: int) -> list[BlockChoice]:
    """Every valid choice of a block with this stride."""
    return [BlockChoice(a, k, e)
            for a in self.dw_kernel_sizes for k in self.dw_kernel_sizes
            for e in self.expand_ratios if strides == 1 or a or k]

  def check(self, candidate: Candidate) -> list[str]:
    """What makes `candidate` invalid in this space (empty if valid)."""
    problems = []
    if len(candidate.filters) != len(self.stages):
      return [f'{len(candidate.filters)} filter counts for '
              f'{len(self.stages)} stages']
    if len(candidate.blocks) != len(self.block_strides):
      return [f'{len(candidate.blocks)} blocks for '
              f'{len(self.block_strides)} searched blocks']
    for i, (f, stage) in enumerate(zip(candidate.filters, self.stages)):
      if f % 8 or f not in stage.filter_choices:
        problems.append(f'stage {i} filters {f} not a multiple of 8 in '
                        f'{stage.filter_choices}')
    for i, (b, s) in enumerate(zip(candidate.blocks, self.block_strides)):
      if b not in self.block_choices(s) and b != self.coarse_block:
        problems.append(f'block {i} {b.code} (stride {s}) not a valid choice')
    return problems

  def to_model_spec(self, candidate: Candidate) -> specs.ModelSpec:
    """The block-spec table of a valid candidate."""
    problems = self.check(candidate)
    if problems:
      raise ValueError(f'{candidate.key}: ' + '; '.join(problems))
    rows = list(self.fixed_rows)
    choices = iter(candidate.blocks)
    for stage, filters in zip(self.stages, candidate.filters):
      for strides in stage.strides:
        b = next(choices)
        rows.append(specs.uib(b.start_dw_kernel_size, b.middle_dw_kernel_size,
                              strides, filters, b.expand_ratio))
    return specs.ModelSpec(tuple(rows), activation=self.activation,
                           head_filters=self.head_filters,
                           resolution=self.resolution)

  def sample(self, phase: str, rng: random.Random,
             base: Candidate | None = None) -> Candidate:
    """A random candidate of `phase`.

    Args:
      phase: `coarse` (random filters, every block `coarse_block`) or `fine`
        (the filters of `base`, random blocks).
      rng: The random generator.
      base: The coarse stage's winner; needed for `fine`.

    Returns:
      A valid candidate.
    """
    if phase == COARSE:
      return Candidate(
          tuple(rng.choice(s.filter_choices) for s in self.stages),
          (self.coarse_block,) * len(self.block_strides))
    _check_phase(phase, base)
    return Candidate(base.filters, tuple(
        rng.choice(self.block_choices(s)) for s in self.block_strides))

  def mutate(self, phase: str, parent: Candidate,
             rng: random.Random) -> Candidate:
    """`parent` with one stage's filters (coarse) or one block (fine) changed.

    Args:
      phase: `coarse` or `fine`.
      parent: A valid candidate.
      rng: The random generator.

    Returns:
      A valid candidate that differs from `parent` in one place, or `parent`
      itself if that place has a single choice.
    """
    if phase == COARSE:
      i = rng.randrange(len(self.stages))
      others = [f for f in self.stages[i].filter_choices
                if f != parent.filters[i]]
      if not others:
        return parent
      filters = list(parent.filters)
      filters[i] = rng.choice(others)
      return Candidate(tuple(filters), parent.blocks)
    _check_phase(phase, parent)
    i = rng.randrange(len(parent.blocks))
    others = [b for b in self.block_choices(self.block_strides[i])
              if b != parent.blocks[i]]
    if not others:
      return parent
    blocks = list(parent.blocks)
    blocks[i] = rng.choice(others)
    return Candidate(parent.filters, tuple(blocks))


def _check_phase(phase: str, base: Candidate | None) -> None:
  if phase not in PHASES:
    raise ValueError(f'phase={phase!r} is not one of {", ".join(PHASES)}.')
  if base is None:
    raise ValueError('the fine stage needs the coarse stage\'s winner.')


def conv_small_space(resolution: int = 224,
                     expand_ratios: tuple[float, ...] = (2.0, 3.0, 4.0, 6.0)
                     ) -> SearchSpace:
  """MNv4-Conv-S's layout with its two UIB stages searched.

  The stem and FusedIB rows are Conv-S's; then two stages of six UIBs
  (strides 16 and 32). Conv-S itself has filters (96, 128), and its blocks
  are points of the fine space.

  Args:
    resolution: The deployment resolution written into the spec.
    expand_ratios: The fine stage's expansion choices.

  Returns:
    The space.
  """
  return SearchSpace(
      fixed_rows=specs.CONV_SMALL.blocks[:5],
      stages=(SearchStage((2, 1, 1, 1, 1, 1), (64, 80, 96, 112, 128)),
              SearchStage((2, 1, 1, 1, 1, 1), (96, 128, 160, 192))),
      expand_ratios=tuple(expand_ratios), resolution=resolution)
