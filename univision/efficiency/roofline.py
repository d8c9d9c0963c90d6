"""Roofline latency model of Keras models (MobileNetV4, arXiv 2404.10518).

The paper's terms ("hardware-independent Pareto efficiency"): per layer i

  LayerTime_i = max(MACs_i / PeakMACs,
                    (WeightBytes_i + ActivationBytes_i) / PeakMemBW)
  ModelTime = sum_i LayerTime_i

and a device is summarised by its ridge point RP = PeakMACs / PeakMemBW
(MACs per byte), swept from 0 to 500. Layers here are the ops that
`counting.count_macs` counts: `conv`, `depthwise`, `dense` (a matmul or
einsum with a weight operand) and `attention` (a matmul or einsum of two
activations, e.g. Mobile MQA's Q K^T and A V). Each reads its weights and
input activations once and writes its output once. Not modelled: batch norm
(folded into the convolution when deployed), activation functions (fused),
additions, pooling, and cache reuse across layers.

  python -m univision.efficiency.roofline --hardware=edgetpu \
    --plot=docs/roofline_edgetpu.png
"""
import dataclasses

from absl import app
from absl import flags

import univision  # pylint: disable=unused-import  (sets the Keras mode)
import tf_keras

from univision.efficiency import counting
from univision.efficiency import hardware
from univision.efficiency import pareto_plot
from univision.efficiency import report
from univision.modeling.backbones import mobilenet_v4_specs as specs

_KINDS = {'Conv2D': 'conv', 'DepthwiseConv2dNative': 'depthwise'}


@dataclasses.dataclass(frozen=True)
class LayerRecord:
  """MACs and bytes moved by one layer (one counted op)."""
  name: str
  kind: str  # conv, depthwise, dense or attention.
  macs: int
  weight_bytes: float
  activation_bytes: float  # Inputs read plus output written.

  @property
  def bytes(self) -> float:
    return self.weight_bytes + self.activation_bytes


def layer_records(model: tf_keras.Model, input_shape: tuple[int, ...],
                  weight_bytes: float = 4, activation_bytes: float = 4
                  ) -> list[LayerRecord]:
  """Per-layer MACs and bytes of `model` on one input of this shape.

  Args:
    model: A Keras model taking one image tensor.
    input_shape: The full input shape, e.g. (1, 224, 224, 3).
    weight_bytes: Bytes per weight element (1 int8, 2 fp16, 4 fp32).
    activation_bytes: Bytes per activation element.

  Returns:
    One record per counted op, in graph order.
  """
  records = []
  for cost in counting.count_macs(model, input_shape):
    kind = _KINDS.get(cost.op_type,
                      'dense' if cost.weight_elements else 'attention')
    records.append(LayerRecord(
        cost.name, kind, cost.macs, cost.weight_elements * weight_bytes,
        cost.activation_elements * activation_bytes))
  return records


def layer_time(record: LayerRecord, peak_macs_per_s: float,
               bandwidth_bytes_per_s: float) -> float:
  """Seconds: the slower of computing and moving the layer's bytes."""
  return max(record.macs / peak_macs_per_s,
             record.bytes / bandwidth_bytes_per_s)


def model_time(records: list[LayerRecord],
               profile: hardware.HardwareProfile) -> float:
  """Seconds: the sum of the layer times on `profile`."""
  return sum(layer_time(r, profile.peak_macs_per_s,
                        profile.bandwidth_bytes_per_s) for r in records)


def model_time_at_ridge_point(records: list[LayerRecord], ridge_point: float,
                              peak_macs_per_s: float = 1.0) -> float:
  """ModelTime of a device with this RP, holding PeakMACs fixed.

  The paper does not say which peak it holds while sweeping RP; holding
  PeakMACs makes RP = 0 (free memory traffic) give latency proportional to
  MACs and large RPs weigh bytes by RP.

  Args:
    records: Per-layer costs, from `layer_records`.
    ridge_point: RP in MACs per byte, >= 0.
    peak_macs_per_s: PeakMACs; 1 gives time in units of one MAC.

  Returns:
    sum_i max(MACs_i, RP * Bytes_i) / PeakMACs.
  """
  return sum(max(r.macs, ridge_point * r.bytes)
             for r in records) / peak_macs_per_s


def estimate(model_id: str, profile: hardware.HardwareProfile
             ) -> dict[str, float]:
  """Roofline figures of one MobileNetV4 classifier at native resolution."""
  resolution = specs.MODEL_SPECS[model_id].resolution
  records = layer_records(report.classifier(model_id),
                          (1, resolution, resolution, 3),
                          profile.weight_bytes, profile.activation_bytes)
  bound = [r.macs / r.bytes > profile.ridge_point for r in records]
  return {
      'resolution': resolution,
      'gmacs': sum(r.macs for r in records) / 1e9,
      'weight_mb': sum(r.weight_bytes for r in records) / 1e6,
      'activation_mb': sum(r.activation_bytes for r in records) / 1e6,
      'compute_bound_layers': sum(bound) / len(bound),
      'latency_ms': model_time(records, profile) * 1e3,
  }


def run(profile_name: str, model_ids: list[str],
        plot_path: str | None = None) -> str:
  """The markdown table of estimates; writes the Pareto plot if asked."""
  profile = hardware.load_profile(profile_name)
  lines = [
      f'{profile.name}: {profile.peak_macs_per_s:.3g} MACs/s, '
      f'{profile.bandwidth_bytes_per_s:.3g} B/s, RP '
      f'{profile.ridge_point:.1f} MACs/byte, {profile.weight_bytes:g} B per '
      f'weight, {profile.activation_bytes:g} B per activation.', '',
      '| model | res | GMACs | weights (MB) | activations (MB) '
      '| compute-bound layers | est. latency (ms) | paper top-1 |',
      '|---|---|---|---|---|---|---|---|']
  rows = {}
  for model_id in model_ids:
    rows[model_id] = e = estimate(model_id, profile)
    lines.append(
        f'| {model_id} | {e["resolution"]} | {e["gmacs"]:.3f} | '
        f'{e["weight_mb"]:.2f} | {e["activation_mb"]:.2f} | '
        f'{e["compute_bound_layers"]:.0%} | {e["latency_ms"]:.3f} | '
        f'{report.PAPER_TOP1[model_id]} |')
  if plot_path:
    pareto_plot.plot(rows, report.PAPER_TOP1, profile.name, plot_path)
  return '\n'.join(lines)


def _define_flags() -> None:
  flags.DEFINE_string(
      'hardware', 'edgetpu', 'A bundled profile '
      f'({", ".join(hardware.available_profiles())}) or a YAML file.')
  flags.DEFINE_list('models', list(report.PAPER),
                    'MobileNetV4 model ids to estimate.')
  flags.DEFINE_string('plot', None, 'PNG file for the Pareto plot.')


def main(_):
  f = flags.FLAGS
  print(run(f.hardware, f.models, f.plot))


if __name__ == '__main__':
  _define_flags()
  app.run(main)
