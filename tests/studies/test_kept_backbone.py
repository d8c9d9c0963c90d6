"""A study's starting backbone kept in its folder: written once, then read."""
import os

import numpy as np
import pytest
import tensorflow as tf, tf_keras

from univision.studies import kept_backbone


def _backbone() -> tf_keras.Model:
  inputs = tf_keras.Input((4,))
  x = tf_keras.layers.Dense(3)(inputs)
  return tf_keras.Model(inputs, tf_keras.layers.BatchNormalization()(x))


def _load(checkpoint: str) -> tf_keras.Model:
  """As a run does: the backbone read out of a larger checkpoint."""
  model = _backbone()
  tf.train.Checkpoint(backbone=model).read(checkpoint).expect_partial()
  return model


def _training_checkpoint(path: str, seed: int) -> str:
  """A checkpoint holding a backbone and more (a head, a step)."""
  tf_keras.utils.set_random_seed(seed)
  return tf.train.Checkpoint(backbone=_backbone(),
                             head=tf_keras.layers.Dense(2),
                             step=tf.Variable(7)).write(path)


def test_the_first_call_keeps_the_backbone_alone(tmp_path):
  given = _training_checkpoint(str(tmp_path / 'demo' / 'ckpt'), seed=0)
  out = str(tmp_path / 'study')
  kept = kept_backbone.keep(out, given, _load)
  assert kept == os.path.join(out, 'init', 'backbone')
  names = {n for n, _ in tf.train.list_variables(kept)}
  assert not any(n.startswith(('head/', 'step/')) for n in names)
  for ours, theirs in zip(_load(kept).weights, _load(given).weights):
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
  # Later calls read the copy, with or without the same checkpoint given.
  assert kept_backbone.keep(out, None, _load) == kept
  assert kept_backbone.keep(out, given, _load) == kept


def test_another_backbone_or_none_is_refused(tmp_path):
  out = str(tmp_path / 'study')
  with pytest.raises(ValueError, match='holds no backbone yet'):
    kept_backbone.keep(out, '', _load)
  kept_backbone.keep(
      out, _training_checkpoint(str(tmp_path / 'a' / 'ckpt'), seed=0), _load)
  retrained = _training_checkpoint(str(tmp_path / 'b' / 'ckpt'), seed=1)
  with pytest.raises(ValueError, match=r'b/ckpt holds another backbone than '
                     r'the one this study keeps in .*init/backbone '
                     r'\(weight 0'):
    kept_backbone.keep(out, retrained, _load)
