"""A detector's query sites: backbone blocks and decoder levels."""
import numpy as np
import pytest
import tensorflow as tf

from univision.modeling.layers import query_modulation_sites as sites_lib


def _levels(seed=0):
  rng = np.random.default_rng(seed)
  return {'3': tf.constant(rng.normal(size=(2, 8, 8, 4)), tf.float32),
          '4': tf.constant(rng.normal(size=(2, 4, 4, 4)), tf.float32)}


@pytest.mark.parametrize('kind', sorted(sites_lib.MODULATIONS))
def test_every_kind_starts_as_the_identity_and_then_follows_the_query(kind):
  sites = sites_lib.QueryModulationSites(kind, {5: 6}, {'3': 4, '4': 4})
  features, block = _levels(), tf.ones([2, 3, 3, 6])
  queries = tf.constant(np.random.default_rng(1).normal(size=(2, 7)),
                        tf.float32)
  out = sites(features, queries)
  for level in features:
    np.testing.assert_array_equal(out[level], features[level])
  np.testing.assert_array_equal(sites.block(5, block, queries), block)
  rng = np.random.default_rng(2)
  sites.set_weights([rng.normal(size=w.shape) for w in sites.get_weights()])
  out = sites(features, queries)
  swapped = sites(features, queries[::-1])
  for level in features:
    assert not np.allclose(out[level], swapped[level])
  assert not np.allclose(sites.block(5, block, queries), block)
  # Blocks that are not sites pass through.
  np.testing.assert_array_equal(sites.block(4, block, queries), block)


def test_unnamed_levels_pass_missing_ones_are_named_config_round_trips():
  sites = sites_lib.QueryModulationSites('film', {2: 4}, {'3': 4})
  features = _levels()
  sites(features, tf.ones([2, 3]))
  sites.set_weights([w + 1.0 for w in sites.get_weights()])
  np.testing.assert_array_equal(sites(features, tf.ones([2, 3]))['4'],
                                features['4'])
  with pytest.raises(ValueError, match=r"no feature level\(s\) \['3'\]"):
    sites({'4': features['4']}, tf.ones([2, 3]))
  assert sites.block_indices == [2]
  clone = sites_lib.QueryModulationSites.from_config(sites.get_config())
  assert clone.get_config() == sites.get_config()
  assert clone.block_placement == 'output'
  inside = sites_lib.QueryModulationSites('film', {2: 16}, {},
                                          block_placement='pre_activation')
  assert sites_lib.QueryModulationSites.from_config(
      inside.get_config()).block_placement == 'pre_activation'
  with pytest.raises(ValueError, match="task.query.modulation: 'add'"):
    sites_lib.QueryModulationSites('add', {}, {'3': 4})
  with pytest.raises(ValueError,
                     match="task.query.backbone_placement: 'middle'"):
    sites_lib.QueryModulationSites('film', {}, {'3': 4},
                                   block_placement='middle')
