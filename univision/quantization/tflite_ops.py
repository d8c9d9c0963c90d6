"""Lists the ops of a TFLite model with the dtypes of their tensors.

Read through `ai_edge_litert`'s interpreter (the maintained TFLite runtime).
An op is at the model's boundary when it reads a model input or writes a
model output: that is where QUANTIZE/DEQUANTIZE legitimately convert uint8
or float I/O; anywhere else they mean part of the graph runs in float.
"""
import collections
import dataclasses

import numpy as np
from ai_edge_litert import interpreter as litert

# Tensors that hold integer bookkeeping (biases, shapes, axes), not data.
_NON_DATA_DTYPES = ('int32', 'int64')


@dataclasses.dataclass(frozen=True)
class OpInfo:
  """One op of a TFLite model."""
  index: int
  name: str  # e.g. 'CONV_2D'.
  input_dtypes: tuple[str, ...]
  output_dtypes: tuple[str, ...]
  at_boundary: bool  # Reads a model input or writes a model output.
  # Shape signatures (-1 = dynamic) of the activations read and written
  # (constant tensors such as weights are left out).
  input_shapes: tuple[tuple[int, ...], ...] = ()
  output_shapes: tuple[tuple[int, ...], ...] = ()
  # Per input (in `input_dtypes` order): computed at run time (True) or a
  # constant of the model (weights, biases, shapes).
  runtime_inputs: tuple[bool, ...] = ()

  @property
  def is_float(self) -> bool:
    """Whether it computes in floating point (any float data tensor)."""
    return any(d.startswith('float') for d in
               self.input_dtypes + self.output_dtypes)

  @property
  def data_dtypes(self) -> tuple[str, ...]:
    return tuple(sorted({d for d in self.input_dtypes + self.output_dtypes
                         if d not in _NON_DATA_DTYPES}))


def _dtype(details: dict) -> str:
  return np.dtype(details['dtype']).name


def load_interpreter(path: str) -> litert.Interpreter:
  """An interpreter for `path`, with an error naming the file if unreadable."""
  try:
    return litert.Interpreter(model_path=path)
  except (ValueError, RuntimeError) as e:
    raise ValueError(f'{path}: not a readable TFLite model ({e}).') from e


def quantize_input(value: np.ndarray, details: dict) -> np.ndarray:
  """`value` in the dtype of a model input with `details`.

  Integer inputs are quantized with the input's own scale and zero point
  (rounded, clipped to the dtype's range); float inputs only cast.
  """
  dtype = np.dtype(details['dtype'])
  if dtype.kind not in 'iu':
    return value.astype(dtype)
  scale, zero_point = details['quantization']
  info = np.iinfo(dtype)
  return np.clip(np.round(value / scale + zero_point), info.min,
                 info.max).astype(dtype)


def dequantize_output(value: np.ndarray, details: dict) -> np.ndarray:
  """A model output with `details` as float32 (integer outputs rescaled)."""
  value = value.astype(np.float32)
  if np.dtype(details['dtype']).kind in 'iu':
    scale, zero_point = details['quantization']
    value = (value - zero_point) * scale
  return value


def list_ops(path: str) -> list[OpInfo]:
  """The ops of the TFLite model at `path`, in execution order."""
  interpreter = load_interpreter(path)
  details = {t['index']: t for t in interpreter.get_tensor_details()}
  tensors = {i: _dtype(t) for i, t in details.items()}
  shape = lambda i: tuple(int(d) for d in details[i].get(
      'shape_signature', details[i]['shape'])) if i in details else ()
  inputs = {d['index'] for d in interpreter.get_input_details()}
  outputs = {d['index'] for d in interpreter.get_output_details()}
  raw_ops = interpreter._get_ops_details()  # pylint: disable=protected-access
  activations = inputs | {i for op in raw_ops for i in op['outputs']}
  ops = []
  for op in raw_ops:
    ins = [i for i in op['inputs'] if i >= 0]
    outs = [i for i in op['outputs'] if i >= 0]
    ops.append(OpInfo(
        index=op['index'], name=op['op_name'],
        input_dtypes=tuple(tensors.get(i, '?') for i in ins),
        output_dtypes=tuple(tensors.get(i, '?') for i in outs),
        at_boundary=bool(inputs.intersection(ins) or
                         outputs.intersection(outs)),
        input_shapes=tuple(shape(i) for i in ins if i in activations),
        output_shapes=tuple(shape(i) for i in outs),
        runtime_inputs=tuple(i in activations for i in ins)))
  return ops


def histogram(ops: list[OpInfo]) -> dict[tuple[str, tuple[str, ...]], int]:
  """Op counts by (name, data dtypes)."""
  return dict(collections.Counter((op.name, op.data_dtypes) for op in ops))
