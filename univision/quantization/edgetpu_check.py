"""Checks whether a TFLite model can run entirely on a Coral Edge TPU.

  python -m univision.quantization.edgetpu_check model.tflite

Prints every op with its tensor dtypes and the problems found, and exits
non-zero unless the model is ready (1: not ready, 2: not a readable model).
No Edge TPU compiler can be installed here (it is not on any package registry
this project uses), so this checks the published requirements instead:

* "fully 8-bit quantized" and "Tensor parameters are quantized (8-bit
  fixed-point numbers; int8 or uint8)": no op may compute in float, and
  QUANTIZE/DEQUANTIZE may appear only at the model's inputs/outputs (float
  input/output conversions are reported unless `allow_float_io`);
* "Tensor sizes are constant at compile-time (no dynamic sizes)";
* "Tensors are either 1-, 2-, or 3-dimensional. If a tensor has more than 3
  dimensions, then only the 3 innermost dimensions may have a size greater
  than 1";
* the op is in the Edge TPU's supported-operations table.

Sources: https://coral.ai/docs/edgetpu/models-intro/ ("Compatibility
overview", "Model requirements" and "Supported operations"), and the
release notes google-coral/edgetpu CHANGES.md. The table below is the 2019
table (no runtime-version column) plus the additions those notes and the
maintainers confirm: ExpandDims, Pack, Quantize, Sum, TransposeConv (runtime
13), Transpose (compiler 16, google-coral/edgetpu#193) and PReLU. Ops known
NOT to map: BATCH_MATMUL (google-coral/edgetpu#381), GELU (#667, #818),
HARD_SWISH (#272), DEQUANTIZE (#659), and FULLY_CONNECTED whose weights are
computed at run time ("Filter, bias, or other param is not constant at
compile-time", #25), as the 'tflite' op set's attention products are. The
per-op restrictions of the table
(e.g. MEAN over x/y only, SOFTMAX on 1-D inputs up to 16,000 elements) are
shown as notes, not checked.
"""
import dataclasses
import sys

from absl import app
from absl import flags

from univision.quantization import tflite_ops

# TFLite builtin op name -> the table's restriction ('' if none).
EDGETPU_OPS = {
    'ADD': '', 'AVERAGE_POOL_2D': 'no fused activation',
    'CONCATENATION': 'no fused activation; constant inputs only as zero '
                     'padding',
    'CONV_2D': '', 'DEPTHWISE_CONV_2D': '', 'EXPAND_DIMS': 'runtime >= 13',
    'FULLY_CONNECTED': 'default weights format; 1-D output',
    'L2_NORMALIZATION': '', 'LOGISTIC': '', 'MAX_POOL_2D':
    'no fused activation', 'MAXIMUM': '', 'MEAN': 'reduces x and/or y only',
    'MINIMUM': '', 'MUL': '', 'PACK': 'runtime >= 13',
    'PAD': 'pads x and/or y only', 'PRELU': '', 'QUANTIZE': 'runtime >= 13',
    'RELU': '', 'RELU6': '', 'RELU_N1_TO_1': '', 'RESHAPE': '',
    'RESIZE_BILINEAR': '3-D input/output; may stay on CPU for precision',
    'RESIZE_NEAREST_NEIGHBOR': '3-D input/output; may stay on CPU',
    'SLICE': '', 'SOFTMAX': '1-D input, at most 16,000 elements',
    'SPACE_TO_DEPTH': '', 'SPLIT': '',
    'SQUEEZE': 'only leading-1 dimensions (no relayout)',
    'STRIDED_SLICE': 'all strides 1, no ellipsis/new-axis masks',
    'SUB': '', 'SUM': 'runtime >= 13', 'TANH': '',
    'TRANSPOSE': 'compiler >= 16', 'TRANSPOSE_CONV': 'runtime >= 13',
}
_CONVERTERS = ('QUANTIZE', 'DEQUANTIZE')


@dataclasses.dataclass(frozen=True)
class Problem:
  """Why one op keeps the model off the Edge TPU."""
  op: tflite_ops.OpInfo
  reason: str


def _rank_problem(shape: tuple[int, ...]) -> bool:
  return len(shape) > 3 and any(d != 1 for d in shape[:-3])


def op_problems(op: tflite_ops.OpInfo,
                allow_float_io: bool = False) -> list[str]:
  """The reasons `op` cannot run on the Edge TPU (empty if it can)."""
  reasons = []
  boundary_converter = op.at_boundary and op.name in _CONVERTERS
  if op.name in _CONVERTERS and not op.at_boundary:
    reasons.append(f'{op.name} inside the model (part of it runs in float)')
  if op.is_float and not (boundary_converter and allow_float_io):
    reasons.append('float tensors ' + '/'.join(
        d for d in op.data_dtypes if d.startswith('float')))
  if op.name not in EDGETPU_OPS and not boundary_converter:
    reasons.append('not in the Edge TPU supported-operations table')
  if op.name == 'FULLY_CONNECTED' and any(op.runtime_inputs[1:2]):
    reasons.append('weights computed at run time (the Edge TPU compiler '
                   'needs constant ones)')
  shapes = op.input_shapes + op.output_shapes
  if any(d < 0 for shape in shapes for d in shape):
    reasons.append('dynamic tensor size')
  bad_rank = [s for s in shapes if _rank_problem(s)]
  if bad_rank:
    reasons.append(f'tensor of shape {list(bad_rank[0])}: more than 3 '
                   'dimensions larger than 1')
  return reasons


def check(path: str, allow_float_io: bool = False
          ) -> tuple[list[tflite_ops.OpInfo], list[Problem]]:
  """All ops of the model at `path`, and the problems found."""
  ops = tflite_ops.list_ops(path)
  problems = [Problem(op, reason) for op in ops
              for reason in op_problems(op, allow_float_io)]
  return ops, problems


def report(path: str, ops: list[tflite_ops.OpInfo],
           problems: list[Problem]) -> str:
  """A human-readable report: op histogram, then every problem."""
  lines = [f'{path}: {len(ops)} ops']
  for (name, dtypes), count in sorted(tflite_ops.histogram(ops).items()):
    note = EDGETPU_OPS.get(name)
    lines.append(f'  {count:4d} x {name:24s} {"/".join(dtypes):16s}'
                 + (f' ({note})' if note else ''))
  if problems:
    lines.append(f'NOT READY for the Edge TPU: {len(problems)} problem(s)')
    lines += [f'  op {p.op.index} {p.op.name}: {p.reason}' for p in problems]
  else:
    lines.append('READY: every op is integer-only and on the Edge TPU list.')
  return '\n'.join(lines)


def main(argv):
  if len(argv) != 2:
    raise app.UsageError('usage: edgetpu_check MODEL.tflite')
  try:
    ops, problems = check(argv[1], flags.FLAGS.allow_float_io)
  except ValueError as e:  # Unreadable file: named in the message.
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  print(report(argv[1], ops, problems))
  sys.exit(1 if problems else 0)


if __name__ == '__main__':
  flags.DEFINE_bool(
      'allow_float_io', False,
      'Accept float QUANTIZE/DEQUANTIZE at the model inputs/outputs.')
  app.run(main)
