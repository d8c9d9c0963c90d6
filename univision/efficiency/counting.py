"""Parameter and multiply-accumulate (MAC) counts of Keras models.

MACs are counted on the model's traced TensorFlow graph at a fixed input
size, so every op is seen, including those inside custom layers (the
attention einsums of Mobile MQA). Counted ops, with MACs per op:

* Conv2D: N * Ho * Wo * Co * kh * kw * Ci
* DepthwiseConv2dNative: N * Ho * Wo * C * m * kh * kw
* MatMul / BatchMatMul: output elements * contracted size
* Einsum: product of the sizes of all distinct labels

Batch norm, activations, additions and pooling are not counted (the
convention of the MobileNet papers and of fvcore's "no-BN" counts). Each
counted op also carries its tensor sizes for the roofline model: weight
elements (operands computed from constants only, i.e. the frozen variables)
and activation elements (the other operands plus the output). Why not
Model Garden's `train_utils.try_count_flops`: it reports total FLOPs of all
ops of the profiler's choosing, not MACs per layer, which the roofline
latency model needs.
"""
import dataclasses

import numpy as np
import tensorflow as tf, tf_keras
from tensorflow.python.framework import convert_to_constants  # pylint: disable=g-direct-tensorflow-import

_COUNTED = ('Conv2D', 'DepthwiseConv2dNative', 'MatMul', 'BatchMatMul',
            'BatchMatMulV2', 'BatchMatMulV3', 'Einsum')


@dataclasses.dataclass(frozen=True)
class OpCost:
  """The MACs and tensor sizes of one counted op of the graph."""
  name: str  # The op name, which carries the Keras layer scopes.
  op_type: str
  macs: int
  weight_elements: int = 0  # Operands that are constants (frozen weights).
  activation_elements: int = 0  # Operands that depend on the input, + output.


def count_params(model: tf_keras.Model, trainable_only: bool = True) -> int:
  """Parameters of `model`; by default trainable only (as timm counts)."""
  variables = model.trainable_weights if trainable_only else model.weights
  return int(sum(np.prod(v.shape) for v in variables))


def _shape(tensor) -> list[int]:
  dims = tensor.shape.as_list()
  if any(d is None for d in dims):
    raise ValueError(f'{tensor.name}: shape {dims} is not fully known; count '
                     'MACs at a fixed input size.')
  return dims


def _einsum_macs(equation: str, operands: list[list[int]]) -> int:
  inputs = equation.replace(' ', '').split('->')[0].split(',')
  sizes = {}
  for labels, shape in zip(inputs, operands):
    if '.' in labels:
      raise ValueError(f'einsum {equation!r} with ellipsis is not supported.')
    for label, size in zip(labels, shape):
      sizes[label] = size
  return int(np.prod(list(sizes.values())))


def op_macs(op: tf.Operation) -> int:
  """MACs of one graph op (0 for ops that are not counted)."""
  kind = op.type
  if kind == 'Conv2D':
    out, kernel = _shape(op.outputs[0]), _shape(op.inputs[1])
    return int(np.prod(out) * np.prod(kernel[:3]))
  if kind == 'DepthwiseConv2dNative':
    out, kernel = _shape(op.outputs[0]), _shape(op.inputs[1])
    return int(np.prod(out) * kernel[0] * kernel[1])
  if kind == 'MatMul':
    a = _shape(op.inputs[0])
    contracted = a[0] if op.get_attr('transpose_a') else a[1]
    return int(np.prod(_shape(op.outputs[0])) * contracted)
  if kind.startswith('BatchMatMul'):
    a = _shape(op.inputs[0])
    contracted = a[-2] if op.get_attr('adj_x') else a[-1]
    return int(np.prod(_shape(op.outputs[0])) * contracted)
  if kind == 'Einsum':
    equation = op.get_attr('equation').decode()
    return _einsum_macs(equation, [_shape(t) for t in op.inputs])
  return 0


def _constant_ops(graph: tf.Graph) -> set[str]:
  """Names of the ops whose outputs do not depend on a graph input."""
  constant, grown = set(), True
  while grown:  # One pass if the ops come topologically sorted.
    size = len(constant)
    for op in graph.get_operations():
      if op.type == 'Const' or (len(op.inputs) and all(
          t.op.name in constant for t in op.inputs)):
        constant.add(op.name)
    grown = len(constant) > size
  return constant


def _tensor_elements(op: tf.Operation, constant: set[str]) -> tuple[int, int]:
  """(weight, activation) elements of a counted op's operands and output."""
  weights, activations = 0, int(np.prod(_shape(op.outputs[0])))
  for tensor in op.inputs:
    size = int(np.prod(_shape(tensor)))
    if tensor.op.name in constant:
      weights += size
    else:
      activations += size
  return weights, activations


def count_macs(model: tf_keras.Model, input_shape: tuple[int, ...]
               ) -> list[OpCost]:
  """Per-op MACs of `model` in inference mode on one input of this shape.

  Args:
    model: A Keras model taking one image tensor.
    input_shape: The full input shape, e.g. (1, 224, 224, 3).

  Returns:
    One `OpCost` per counted op (nested function calls are inlined), in
    graph order.
  """
  function = tf.function(lambda x: model(x, training=False))
  concrete = function.get_concrete_function(
      tf.TensorSpec(input_shape, tf.float32))
  frozen = convert_to_constants.convert_variables_to_constants_v2(concrete)
  constant = _constant_ops(frozen.graph)
  costs = []
  for op in frozen.graph.get_operations():
    if op.type in _COUNTED:
      macs = op_macs(op)
      if macs:
        costs.append(OpCost(op.name, op.type, macs,
                            *_tensor_elements(op, constant)))
  return costs


def total_macs(model: tf_keras.Model, input_shape: tuple[int, ...]) -> int:
  return sum(c.macs for c in count_macs(model, input_shape))


def macs_by_layer(costs: list[OpCost],
                  layer_names: list[str]) -> dict[str, int]:
  """MACs summed per named Keras layer (a scope in the op names).

  Args:
    costs: Output of `count_macs`.
    layer_names: Names of the layers to report, e.g. a backbone's blocks.

  Returns:
    MACs per layer name, plus 'other' for ops under none of them.
  """
  totals = dict.fromkeys([*layer_names, 'other'], 0)
  wanted = set(layer_names)
  for cost in costs:
    owner = next((s for s in cost.name.split('/') if s in wanted), 'other')
    totals[owner] = totals.get(owner, 0) + cost.macs
  return totals
