"""Finding checkpoints (a prefix or a training folder) and restoring them."""
from typing import Any

from absl import logging
import tensorflow as tf, tf_keras


def resolve_checkpoint(path: str, key: str = '--checkpoint_path') -> str:
  """A checkpoint prefix from a checkpoint or a folder, or a clear error.

  Args:
    path: A checkpoint prefix, or a folder (its latest checkpoint is used).
    key: The flag or config key `path` came from, for the error message.

  Raises:
    FileNotFoundError: naming `key` and `path` when there is no checkpoint.
  """
  if tf.io.gfile.isdir(path):
    latest = tf.train.latest_checkpoint(path)
    if latest is None:
      raise FileNotFoundError(f'{key}={path}: no checkpoint in this folder.')
    return latest
  if not tf.io.gfile.exists(path + '.index'):
    raise FileNotFoundError(f'{key}={path}: no such checkpoint.')
  return path


def restore_init_checkpoint(model: tf_keras.Model, path: str, modules: str,
                            backbone_config: Any) -> None:
  """Loads `task.init_checkpoint` into 'all' of a model or its 'backbone'.

  As Model Garden's task `initialize`, but a folder without checkpoint and
  weights that do not fit (another backbone size, say) raise errors that
  name the config keys, instead of a `None` path or bare variable paths; and
  a headless pretraining checkpoint (an MAE encoder) loads into a backbone
  with a head, whose head layers start fresh (`_restore_without_head`).

  Args:
    model: The task's model (with a `backbone` for modules='backbone').
    path: `task.init_checkpoint`: a checkpoint prefix or a training folder;
      '' loads nothing.
    modules: `task.init_checkpoint_modules`, 'all' or 'backbone'.
    backbone_config: `task.model.backbone` (a Model Garden one-of config),
      named in the error when the checkpoint does not fit.

  Raises:
    FileNotFoundError: naming `task.init_checkpoint` if it holds no
      checkpoint.
    ValueError: naming `task.init_checkpoint_modules` if it is not 'all' or
      'backbone', or `task.init_checkpoint` and the backbone config when the
      checkpoint does not fit the model.
  """
  if not path:
    return
  prefix = resolve_checkpoint(path, 'task.init_checkpoint')
  if modules == 'all':
    items = {'model': model}
  elif modules == 'backbone':
    items = {'backbone': model.backbone}
  else:
    raise ValueError(f'task.init_checkpoint_modules={modules!r} must be '
                     "'all' or 'backbone'.")
  try:
    tf.train.Checkpoint(**items).read(
        prefix).expect_partial().assert_existing_objects_matched()
  except (AssertionError, ValueError) as e:
    fresh = (_restore_without_head(model.backbone, prefix)
             if modules == 'backbone' else None)
    if fresh is None:
      raise ValueError(
          f'task.init_checkpoint={path} does not fit task.model '
          f'(init_checkpoint_modules={modules!r}, backbone '
          f'{backbone_config.type} {backbone_config.get().as_dict()}): '
          f'{str(e).splitlines()[0]}') from e
    logging.info('Backbone head layers %s are not in %s: they start fresh.',
                 fresh, prefix)
  logging.info('Loaded %s of the model from %s.', modules, prefix)


def _restore_without_head(backbone: tf_keras.Model,
                          prefix: str) -> list[str] | None:
  """Loads a checkpoint of the backbone without its head (e.g. an MAE's).

  Pretraining saves a headless encoder (`include_head=False`, as Hiera's MAE
  does); a classifier backbone adds head layers, which fine-tuning starts
  fresh, as the reference fine-tuning code does. The headless twin of
  `backbone` must match the checkpoint exactly; its weights are then copied
  layer by layer (by name).

  Returns:
    The names of the head layers left fresh, or None if `backbone` has no
    head option or its headless twin does not fit the checkpoint either.
  """
  config = backbone.get_config()
  if not config.get('include_head'):
    return None
  twin = type(backbone).from_config({**config, 'include_head': False})
  try:
    tf.train.Checkpoint(backbone=twin).read(
        prefix).expect_partial().assert_existing_objects_matched()
  except (AssertionError, ValueError):
    return None
  trunk = {layer.name for layer in twin.layers if layer.weights}
  for layer in twin.layers:
    if layer.weights:
      backbone.get_layer(layer.name).set_weights(layer.get_weights())
  return [layer.name for layer in backbone.layers
          if layer.weights and layer.name not in trunk]
