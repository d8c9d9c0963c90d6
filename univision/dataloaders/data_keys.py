"""How input errors name a data config: its config key and file pattern."""
from typing import Any

from univision.core import input_checks


def data_key(params: Any) -> str:
  """`task.train_data` or `task.validation_data`: the key of `params`.

  Args:
    params: A data config with `is_training` (Model Garden's `DataConfig`).
  """
  return 'task.train_data' if params.is_training else 'task.validation_data'


def checked_input_path(params: Any) -> str:
  """Checks the files of `params`; returns how decode errors name the data.

  Args:
    params: A data config with `is_training` and `input_path`.

  Returns:
    `'<key>.input_path=<input_path>'`, e.g.
    `'task.train_data.input_path=data/fashion_mnist/train-*'`.

  Raises:
    FileNotFoundError: naming `<key>.input_path`, if it is empty or one of
      its patterns matches no file.
  """
  key = f'{data_key(params)}.input_path'
  input_checks.check_input_path(params.input_path, key)
  return f'{key}={params.input_path}'
