"""Tests for the NAS search space: validity, sampling, mutation."""
import random

import pytest

from univision.efficiency import nas_space
from univision.modeling.backbones import mobilenet_v4_spec_file as spec_file
from univision.modeling.backbones import mobilenet_v4_specs as specs

SPACE = nas_space.conv_small_space()
IB = nas_space.IB_E4_K3
# MNv4-Conv-S's own UIBs (start DW, middle DW, expansion), a point of SPACE.
CONV_SMALL_BLOCKS = tuple(nas_space.BlockChoice(*b) for b in (
    (5, 5, 3.0), (0, 3, 2.0), (0, 3, 2.0), (0, 3, 2.0), (0, 3, 2.0),
    (3, 0, 4.0), (3, 3, 6.0), (5, 5, 4.0), (0, 5, 4.0), (0, 5, 3.0),
    (0, 3, 4.0), (0, 3, 4.0)))


def test_conv_small_is_a_point_of_the_space():
  candidate = nas_space.Candidate((96, 128), CONV_SMALL_BLOCKS)
  assert SPACE.check(candidate) == []
  assert SPACE.to_model_spec(candidate) == specs.CONV_SMALL


def test_coarse_samples_vary_only_filters_and_are_valid():
  rng = random.Random(0)
  samples = [SPACE.sample(nas_space.COARSE, rng) for _ in range(200)]
  for candidate in samples:
    assert SPACE.check(candidate) == []
    assert candidate.blocks == (IB,) * 12
  seen = {c.filters for c in samples}
  assert len(seen) == 20  # All 5 x 4 filter combinations occur.


def test_fine_samples_keep_filters_and_are_valid_tables():
  rng = random.Random(0)
  base = nas_space.Candidate((80, 160), (IB,) * 12)
  samples = [SPACE.sample(nas_space.FINE, rng, base) for _ in range(300)]
  for candidate in samples:
    assert SPACE.check(candidate) == []
    assert candidate.filters == (80, 160)
    # The table reads back through the spec-file checks (strides, kernels).
    spec = SPACE.to_model_spec(candidate)
    assert spec_file.from_dict(spec_file.to_dict(spec), 'sample') == spec
    for block, strides in zip(candidate.blocks, SPACE.block_strides):
      if strides == 2:
        assert block.start_dw_kernel_size or block.middle_dw_kernel_size
  blocks = [b for c in samples for b in c.blocks]
  assert nas_space.BlockChoice(0, 0, 2.0) in blocks  # FFN, stride 1 only.
  assert {b.expand_ratio for b in blocks} == {2.0, 3.0, 4.0, 6.0}
  assert {b.start_dw_kernel_size for b in blocks} == {0, 3, 5}


def test_fixed_rows_and_head_are_never_searched():
  rng = random.Random(1)
  base = SPACE.sample(nas_space.COARSE, rng)
  spec = SPACE.to_model_spec(SPACE.sample(nas_space.FINE, rng, base))
  assert spec.blocks[:5] == specs.CONV_SMALL.blocks[:5]
  assert spec.head_filters == (960, 1280)


def test_mutation_changes_one_place_of_its_phase():
  rng = random.Random(2)
  parent = nas_space.Candidate((96, 128), CONV_SMALL_BLOCKS)
  for _ in range(50):
    child = SPACE.mutate(nas_space.COARSE, parent, rng)
    assert child.blocks == parent.blocks
    assert sum(a != b for a, b in zip(child.filters, parent.filters)) == 1
    child = SPACE.mutate(nas_space.FINE, parent, rng)
    assert child.filters == parent.filters
    assert sum(a != b for a, b in zip(child.blocks, parent.blocks)) == 1
    assert SPACE.check(child) == []


def test_check_names_each_problem():
  strided_ffn = (nas_space.BlockChoice(0, 0, 4.0),) + (IB,) * 11
  problems = SPACE.check(nas_space.Candidate((100, 128), strided_ffn))
  assert problems == [
      'stage 0 filters 100 not a multiple of 8 in (64, 80, 96, 112, 128)',
      'block 0 a0k0e4 (stride 2) not a valid choice']
  assert SPACE.check(nas_space.Candidate((96,), (IB,) * 12)) == [
      '1 filter counts for 2 stages']
  with pytest.raises(ValueError, match='c96-128_a7k3e4'):
    SPACE.to_model_spec(nas_space.Candidate(
        (96, 128), (nas_space.BlockChoice(7, 3, 4.0),) + (IB,) * 11))


def test_space_refuses_bad_choices():
  with pytest.raises(ValueError, match=r'stages\[1\].filter_choices'):
    nas_space.SearchSpace(specs.CONV_SMALL.blocks[:5], (
        nas_space.SearchStage((2, 1), (64,)),
        nas_space.SearchStage((2, 1), (96, 100))))
  with pytest.raises(ValueError, match=r'stages\[0\].strides'):
    nas_space.SearchSpace((), (nas_space.SearchStage((1, 2), (64,)),))
  with pytest.raises(ValueError, match='the fine stage needs'):
    SPACE.sample(nas_space.FINE, random.Random(0))
  with pytest.raises(ValueError, match="phase='medium'"):
    SPACE.sample('medium', random.Random(0), None)


def test_paper_fine_stage_keeps_expansion_four():
  space = nas_space.conv_small_space(expand_ratios=(4.0,))
  rng = random.Random(3)
  base = space.sample(nas_space.COARSE, rng)
  for _ in range(50):
    candidate = space.sample(nas_space.FINE, rng, base)
    assert {b.expand_ratio for b in candidate.blocks} == {4.0}
