"""A study's starting backbone, kept in the study's own folder.

Run folders and `runs/demo` stay on the machine that made them, and `make
demo` trained again gives another backbone (its test top-1 moves by tenths
of a point between machines, its weights entirely). Rows of one study made
from two backbones cannot be compared as draws of one setup, so a study
whose runs must share their start keeps that backbone's weights, alone, in
`<output_dir>/init/` (a few MB, committed with the rows), and every run, on
whichever machine resumes the study, starts from that copy. The patch study
keeps its trained base the same way (`model_patches`).
"""
import os
from typing import Callable

from absl import logging
import numpy as np
import tensorflow as tf, tf_keras

PREFIX = os.path.join('init', 'backbone')


def kept_path(output_dir: str) -> str:
  """The prefix of the backbone checkpoint kept in `output_dir`."""
  return os.path.join(output_dir, PREFIX)


def keep(output_dir: str, given: str | None,
         load: Callable[[str], tf_keras.Model]) -> str:
  """The backbone checkpoint every run of the study starts from.

  The first call writes the backbone of `given` to `<output_dir>/init/`;
  later ones return that copy, and a `given` checkpoint, if any, must hold
  the same weights.

  Args:
    output_dir: The study's folder.
    given: A checkpoint (file prefix or folder) the backbone is read from,
      or None / '' once the study keeps one.
    load: checkpoint -> the backbone with its weights read from it the way
      a run reads its initial checkpoint (so any layout the runs accept,
      e.g. a classification training checkpoint, is read as they read it).

  Returns:
    The kept checkpoint's prefix.

  Raises:
    ValueError: if neither is there, or `given` holds another backbone than
      the kept one (naming both and the first weight that differs).
  """
  kept = kept_path(output_dir)
  if not tf.io.gfile.exists(kept + '.index'):
    if not given:
      raise ValueError(f'{kept} holds no backbone yet: give the checkpoint '
                       'to start the study from (--init_checkpoint).')
    backbone = load(given)
    tf.train.Checkpoint(backbone=backbone).write(kept)
    logging.info('Kept the backbone of %s in %s: every run starts from it.',
                 given, kept)
    return kept
  if given:
    theirs = [w.numpy() for w in load(given).weights]
    ours = load(kept).weights
    for index, (a, b) in enumerate(zip(theirs, ours)):
      if not np.array_equal(a, b.numpy()):
        raise ValueError(
            f'--init_checkpoint {given} holds another backbone than the one '
            f'this study keeps in {kept} (weight {index}, {b.name}, '
            'differs): the study\'s runs start from the kept one. Leave '
            '--init_checkpoint out to go on, or give another --output_dir '
            f'to start a study from {given}.')
  return kept
