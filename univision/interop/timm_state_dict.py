"""Checked assignment of a timm state dict (numpy arrays) to Keras variables.

Shared by the timm converters (`timm_mobilenet_v4`, `timm_hiera`): each
builds the list of `Assignment`s for its architecture; this module reads
the `.safetensors` file, fits the class count, and assigns only after every
tensor has been checked, so a bad file leaves the model untouched and the
error lists everything that is wrong at once.
"""
import dataclasses
import os
from collections.abc import Callable, Mapping

import numpy as np
import tensorflow as tf, tf_keras


@dataclasses.dataclass(frozen=True)
class Assignment:
  """One Keras variable, the timm tensor it takes, and how to convert it."""
  variable: tf.Variable
  timm_key: str
  transform: Callable[[np.ndarray], np.ndarray]


def read_safetensors(path: str) -> dict[str, np.ndarray]:
  """Reads a `.safetensors` file into numpy arrays (no torch, no pickle)."""
  from safetensors import numpy as safetensors_numpy  # pylint: disable=g-import-not-at-top
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path}: no such safetensors file.')
  try:
    return safetensors_numpy.load_file(path)
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f'{path}: not a readable safetensors file ({e}).') from e


def fit_class_count(state_dict: Mapping[str, np.ndarray], num_classes: int,
                    classifier: str) -> Mapping[str, np.ndarray]:
  """timm weights for a model with timm's classes, or one more.

  Model Garden's ImageNet TFRecords label classes 1..1000 (1001 outputs):
  for such a model a class 0 that never wins is prepended to timm's
  classifier (`<classifier>.weight` / `.bias`): zero weights, bias -1e4.

  Raises:
    ValueError: if `num_classes` is neither timm's count nor one more.
  """
  timm_classes = len(state_dict.get(f'{classifier}.bias', ()))
  if num_classes == timm_classes:
    return state_dict
  if num_classes != timm_classes + 1:
    raise ValueError(f'The model has {num_classes} classes, the timm weights '
                     f'{timm_classes}: use {timm_classes} or '
                     f'{timm_classes + 1} (background class 0).')
  tensors = dict(state_dict)
  weight = tensors[f'{classifier}.weight']
  bias = tensors[f'{classifier}.bias']
  tensors[f'{classifier}.weight'] = np.concatenate(
      [np.zeros_like(weight[:1]), weight])
  tensors[f'{classifier}.bias'] = np.concatenate(
      [np.full_like(bias[:1], -1e4), bias])
  return tensors


def assign_checked(model: tf_keras.Model, found: list[Assignment],
                   state_dict: Mapping[str, np.ndarray], model_name: str,
                   ignored_suffixes: tuple[str, ...] = (),
                   shape_hints: Mapping[str, str] | None = None) -> None:
  """Assigns `found` from `state_dict` once every tensor has been checked.

  Args:
    model: The model; each of its weights must be in `found`.
    found: The architecture's assignments.
    state_dict: timm tensor names to numpy arrays.
    model_name: Names the model in the error.
    ignored_suffixes: timm tensors with these suffixes need no variable
      (e.g. BN's `.num_batches_tracked`).
    shape_hints: A note for a shape mismatch of a timm key (e.g. the
      position embedding of another image size).

  Raises:
    ValueError: listing every missing, mis-shaped and unused timm tensor
      and every model weight left unset; nothing is assigned then.
  """
  problems, ready = [], []
  for a in found:
    if a.timm_key not in state_dict:
      problems.append(f'missing in timm weights: {a.timm_key} (for '
                      f'{a.variable.name} {tuple(a.variable.shape)})')
      continue
    value = a.transform(np.asarray(state_dict[a.timm_key]))
    if tuple(value.shape) != tuple(a.variable.shape):
      hint = (shape_hints or {}).get(a.timm_key, '')
      problems.append(f'shape mismatch: {a.timm_key} {value.shape} -> '
                      f'{a.variable.name} {tuple(a.variable.shape)}'
                      + (f' ({hint})' if hint else ''))
    ready.append((a.variable, value))
  used = {a.timm_key for a in found}
  problems += [f'unused timm tensor: {k} {tuple(np.shape(v))}'
               for k, v in sorted(state_dict.items())
               if k not in used and not k.endswith(ignored_suffixes)]
  assigned = {id(a.variable) for a in found}
  problems += [f'not set from timm: {v.name}' for v in model.weights
               if id(v) not in assigned]
  if problems:
    raise ValueError(f'timm weights do not fit {model_name}:\n  ' +
                     '\n  '.join(problems))
  for variable, value in ready:
    variable.assign(value.astype(variable.dtype.as_numpy_dtype))
