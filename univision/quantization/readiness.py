"""Which MobileNetV4 models become integer-only Edge TPU models through QAT.

  python -m univision.quantization.readiness --input_size=64 \
    --op_set=edgetpu --output_dir=/tmp/qat_readiness

For each model: a classifier with random weights (BN statistics set from
random images, so activations have a trained network's scale), wrapped for
QAT, its ranges calibrated on random images, converted to an integer-only
TFLite model (uint8 I/O) and run through `edgetpu_check`. It also reports how
closely the int8 model follows the fake-quantized Keras model on other random
images (correlation of the logits). Architecture-level readiness only: a
trained model's accuracy is measured by `evaluate_tflite`.
"""
import dataclasses
import os

from absl import app
from absl import flags
import numpy as np
import tf_keras
from official.vision.modeling import classification_model

from univision.modeling.backbones import mobilenet_v4
from univision.modeling.backbones import mobilenet_v4_specs
from univision.quantization import calibration
from univision.quantization import edgetpu_check
from univision.quantization import flat_graph
from univision.quantization import qat
from univision.quantization import tflite_ops


@dataclasses.dataclass(frozen=True)
class Readiness:
  model_id: str
  tflite_path: str
  num_ops: int
  num_float_ops: int
  problems: list[edgetpu_check.Problem]
  logits_correlation: float  # int8 TFLite vs fake-quantized Keras model.


def random_classifier(model_id: str, size: int, num_classes: int = 10,
                      seed: int = 0) -> tf_keras.Model:
  """A classifier whose activations keep a trained network's scale."""
  rng = np.random.default_rng(seed)
  tf_keras.utils.set_random_seed(seed)
  backbone = mobilenet_v4.MobileNetV4(model_id, norm_momentum=0.0)
  model = classification_model.ClassificationModel(
      backbone, num_classes, kernel_initializer='glorot_uniform')
  for variable in model.weights:
    if 'layer_scale' in variable.name:  # ~0 at init: blocks near identity.
      variable.assign(rng.uniform(0.5, 1.5, variable.shape))
  model(random_images(16, size, seed), training=True)  # BN stats := batch's.
  return model


def random_images(count: int, size: int, seed: int = 1) -> np.ndarray:
  return np.random.default_rng(seed).normal(
      size=(count, size, size, 3)).astype(np.float32)


def _run_uint8(path: str, images: np.ndarray) -> np.ndarray:
  interpreter = tflite_ops.load_interpreter(path)
  interpreter.allocate_tensors()
  inp = interpreter.get_input_details()[0]
  out = interpreter.get_output_details()[0]
  in_scale, in_zero = inp['quantization']
  out_scale, out_zero = out['quantization']
  logits = []
  for image in images:
    q = np.clip(np.round(image / in_scale + in_zero), 0, 255)
    interpreter.set_tensor(inp['index'], q[None].astype(np.uint8))
    interpreter.invoke()
    logits.append((interpreter.get_tensor(out['index'])[0].astype(np.float32)
                   - out_zero) * out_scale)
  return np.stack(logits)


def check_model(model_id: str, size: int, op_set: str,
                output_dir: str) -> Readiness:
  """QAT-converts one random-weight model and checks the result."""
  model = random_classifier(model_id, size)
  flat = flat_graph.flat_classifier(model, (size, size), op_set)
  qat_model = qat.quantize_flat_model(flat)
  calibration.calibrate(qat_model, flat,
                        [random_images(8, size, seed) for seed in (2, 3)])
  path = os.path.join(output_dir, f'{model_id}_{size}_{op_set}_qat.tflite')
  with open(path, 'wb') as f:
    f.write(qat.convert(qat_model))
  ops, problems = edgetpu_check.check(path)
  images = random_images(16, size, seed=4)
  want = qat_model(images, training=False).numpy().ravel()
  got = _run_uint8(path, images).ravel()
  return Readiness(model_id, path, len(ops),
                   sum(op.is_float for op in ops), problems,
                   float(np.corrcoef(got, want)[0, 1]))


_INPUT_SIZE = flags.DEFINE_integer('input_size', 64, 'Square input size.')
_OP_SET = flags.DEFINE_enum('op_set', 'edgetpu', list(flat_graph.OP_SETS),
                            'Ops the flat graph may use.')
_MODELS = flags.DEFINE_list('models', sorted(mobilenet_v4_specs.MODEL_SPECS),
                            'Model ids.')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', '/tmp/qat_readiness',
                                  'Where the .tflite files go.')


def main(_):
  os.makedirs(_OUTPUT_DIR.value, exist_ok=True)
  print('| model | input | op set | ops | float ops | Edge TPU check | '
        'corr(int8, QAT Keras) |')
  print('|---|---|---|---|---|---|---|')
  for model_id in _MODELS.value:
    r = check_model(model_id, _INPUT_SIZE.value, _OP_SET.value,
                    _OUTPUT_DIR.value)
    names = sorted({p.op.name for p in r.problems})
    verdict = 'READY' if not r.problems else (
        f'{len(r.problems)} problems ({", ".join(names)})')
    print(f'| {model_id} | {_INPUT_SIZE.value} | {_OP_SET.value} | '
          f'{r.num_ops} | {r.num_float_ops} | {verdict} | '
          f'{r.logits_correlation:.3f} |', flush=True)


if __name__ == '__main__':
  app.run(main)
