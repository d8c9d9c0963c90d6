"""Per-op TFLite latency: every op of a model timed alone, as its own model.

Why our own: the LiteRT Python interpreter has no op profiler, and TFLite's
`benchmark_model` (which has one) is a C++ binary not shipped on PyPI. So
each op is cut out of the flatbuffer into a one-op model (its constant
inputs, e.g. weights, kept; its other inputs become the model's inputs,
filled with random values in their own dtype) and run by the same
interpreter and XNNPACK delegate as the whole model. An op XNNPACK takes is
timed in XNNPACK, one it does not take in TFLite's own kernel, as in the
whole model. What this leaves out is the hand-over between ops (a delegate
partition boundary, layout changes, cold caches): the sum of the op times
against the whole model's time says how much of the whole is accounted for.
"""
import collections
import dataclasses
import statistics
from typing import Sequence

import numpy as np
from ai_edge_litert import interpreter as litert
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from benchlib import timing


@dataclasses.dataclass(frozen=True)
class OpTime:
  """One op of a model and its median time alone."""
  index: int  # Position in the model's (first) subgraph.
  name: str  # Op type, e.g. 'BATCH_MATMUL'.
  dtype: str  # Dtype of its first output, e.g. 'int8'.
  output: str  # Name of its first output tensor (says which layer).
  output_shape: tuple[int, ...]
  milliseconds: float


def _opcode_names(model: schema.ModelT) -> list[str]:
  return [flatbuffer_utils.opcode_to_name(model, i)
          for i in range(len(model.operatorCodes))]


def _dtype_name(tensor_type: int) -> str:
  return flatbuffer_utils.type_to_name(tensor_type).lower()


def _is_constant(model: schema.ModelT, tensor: schema.TensorT) -> bool:
  data = model.buffers[tensor.buffer].data
  return data is not None and len(data) > 0


def single_op_model(model: schema.ModelT, index: int) -> bytes:
  """A flatbuffer holding only op `index` of `model`'s first subgraph.

  Its tensors and constant buffers are copied; inputs without data become
  the model's inputs and its outputs the model's outputs.
  """
  graph = model.subgraphs[0]
  op = graph.operators[index]
  used = [t for t in [*op.inputs, *op.outputs, *(op.intermediates or [])]
          if t >= 0]
  tensor_ids = list(dict.fromkeys(used))
  remap = {old: new for new, old in enumerate(tensor_ids)}
  buffers = [schema.BufferT()]  # Buffer 0 is the empty sentinel.
  tensors = []
  for old in tensor_ids:
    tensor = graph.tensors[old]
    copy = schema.TensorT()
    for field in ('shape', 'type', 'name', 'quantization', 'isVariable',
                  'sparsity', 'shapeSignature', 'hasRank'):
      setattr(copy, field, getattr(tensor, field))
    copy.buffer = 0
    if _is_constant(model, tensor):
      copy.buffer = len(buffers)
      buffers.append(model.buffers[tensor.buffer])
    tensors.append(copy)
  new_op = schema.OperatorT()
  for field in ('opcodeIndex', 'builtinOptionsType', 'builtinOptions',
                'customOptions', 'customOptionsFormat',
                'builtinOptions2Type', 'builtinOptions2'):
    setattr(new_op, field, getattr(op, field))
  new_op.inputs = [remap.get(t, -1) for t in op.inputs]
  new_op.outputs = [remap[t] for t in op.outputs]
  new_op.intermediates = [remap[t] for t in (op.intermediates or [])]
  sub = schema.SubGraphT()
  sub.tensors = tensors
  sub.operators = [new_op]
  sub.inputs = [remap[t] for t in op.inputs
                if t >= 0 and not _is_constant(model, graph.tensors[t])]
  sub.outputs = [remap[t] for t in op.outputs]
  sub.name = 'single_op'
  single = schema.ModelT()
  single.version = model.version
  single.operatorCodes = model.operatorCodes
  single.subgraphs = [sub]
  single.buffers = buffers
  single.description = f'op {index} of a larger model'
  return flatbuffer_utils.convert_object_to_bytearray(single)


def _random_input(detail: dict, rng: np.random.Generator) -> np.ndarray:
  dtype = np.dtype(detail['dtype'])
  if np.issubdtype(dtype, np.integer):
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -128), min(info.max, 127) + 1,
                        detail['shape'], dtype=dtype)
  return rng.standard_normal(detail['shape']).astype(dtype)


def invoker(model_content: bytes, threads: int, seed: int = 0):
  """A blocking call running `model_content` once on fixed random inputs."""
  runner = litert.Interpreter(model_content=model_content,
                              num_threads=threads)
  runner.allocate_tensors()
  rng = np.random.default_rng(seed)
  for detail in runner.get_input_details():
    runner.set_tensor(detail['index'], _random_input(detail, rng))
  return runner.invoke


def profile(models: dict[str, bytes], threads: int = 1, repeats: int = 5,
            min_sample_s: float = 0.02
            ) -> dict[str, tuple[list[OpTime], float]]:
  """Times each op of some TFLite models alone, and each whole model.

  All ops of all models are timed in the same rounds (`timing.interleaved`),
  so load from other processes hits them alike and the models' times can
  be compared.

  Args:
    models: Name -> TFLite flatbuffer.
    threads: Interpreter threads, for the ops and the whole models alike.
    repeats: Timed samples per op; the median is kept.
    min_sample_s: Each sample averages enough back-to-back calls to last
      about this long.

  Returns:
    Name -> (per-op times in graph order, the whole model's median ms).
  """
  contenders, graphs = {}, {}
  for name, content in models.items():
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    graphs[name] = (model, _opcode_names(model))
    contenders[name, 'whole'] = invoker(content, threads)
    for index in range(len(model.subgraphs[0].operators)):
      contenders[name, index] = invoker(single_op_model(model, index),
                                        threads)
  samples = timing.interleaved(contenders, repeats, warmup=1,
                               min_sample_s=min_sample_s)
  profiles = {}
  for name, (model, names) in graphs.items():
    graph = model.subgraphs[0]
    times = []
    for index, op in enumerate(graph.operators):
      output = graph.tensors[op.outputs[0]]
      times.append(OpTime(
          index, names[op.opcodeIndex], _dtype_name(output.type),
          output.name.decode() if isinstance(output.name, bytes)
          else str(output.name),
          tuple(int(d) for d in output.shape),
          1e3 * statistics.median(samples[name, index])))
    profiles[name] = (times, 1e3 * statistics.median(samples[name, 'whole']))
  return profiles


def by_op_type(times: Sequence[OpTime]) -> dict[str, tuple[int, float]]:
  """Op type -> (how many ops, their total ms)."""
  totals = collections.defaultdict(lambda: (0, 0.0))
  for t in times:
    count, ms = totals[t.name]
    totals[t.name] = (count + 1, ms + t.milliseconds)
  return dict(totals)
