"""Finding checkpoints given as a prefix or as a training folder."""
import tensorflow as tf


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
