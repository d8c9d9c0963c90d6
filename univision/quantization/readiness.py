"""Which MobileNetV4 models become integer-only Edge TPU models, and how.

  python -m univision.quantization.readiness --method=qat --op_set=edgetpu \
    --input_size=64 --output_dir=/tmp/qat_readiness

For each model: a classifier with random weights (BN statistics set from
random images, so activations have a trained network's scale), then either

* `--method=qat`: wrapped for QAT (`op_set`), its ranges calibrated on random
  images, converted with `qat.convert`; or
* `--method=ptq`: univision's post-training int8 (`ptq.quantize`: the
  QAT graph of `op_set`, ranges calibrated on random images, no training);
* `--method=int8_full`: the float model itself, post-training quantized with
  the converter settings of Model Garden's `int8_full` (integer-only, uint8
  I/O), calibrated on random images;

and the uint8 TFLite model is run through `edgetpu_check`. It also reports
how closely the int8 model follows its Keras source (the fake-quantized
model for QAT, the float model for PTQ) on other random images (correlation
of the logits). Architecture-level readiness only: a trained model's
accuracy is measured by `evaluate_tflite`.
"""
import dataclasses
import os

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf, tf_keras

from univision.modeling import classifiers
from univision.modeling.backbones import mobilenet_v4_specs
from univision.quantization import calibration
from univision.quantization import edgetpu_check
from univision.quantization import flat_graph
from univision.quantization import keras_converter
from univision.quantization import ptq
from univision.quantization import qat
from univision.quantization import tflite_ops


METHODS = ('qat', 'ptq', 'int8_full')


@dataclasses.dataclass(frozen=True)
class Readiness:
  model_id: str
  tflite_path: str
  num_ops: int
  num_float_ops: int
  problems: list[edgetpu_check.Problem]
  logits_correlation: float  # int8 TFLite vs the Keras model it came from.


def random_classifier(model_id: str, size: int, num_classes: int = 10,
                      seed: int = 0,
                      model_spec: mobilenet_v4_specs.ModelSpec | None = None
                      ) -> tf_keras.Model:
  """A classifier whose activations keep a trained network's scale.

  `model_spec`: a table that is not built in (`model_id` is its label).
  """
  rng = np.random.default_rng(seed)
  tf_keras.utils.set_random_seed(seed)
  model = classifiers.mobilenet_v4_classifier(
      model_id, num_classes, model_spec=model_spec,
      kernel_initializer='glorot_uniform', norm_momentum=0.0)
  for variable in model.weights:
    if 'layer_scale' in variable.name:  # ~0 at init: blocks near identity.
      variable.assign(rng.uniform(0.5, 1.5, variable.shape))
  model(random_images(16, size, seed), training=True)  # BN stats := batch's.
  return model


def random_images(count: int, size: int, seed: int = 1) -> np.ndarray:
  return np.random.default_rng(seed).normal(
      size=(count, size, size, 3)).astype(np.float32)


def _run(path: str, images: np.ndarray) -> np.ndarray:
  """Float logits of a batch-1 TFLite model, one image at a time.

  The model's only output, or its `logits` output.
  """
  runner = tflite_ops.load_interpreter(path).get_signature_runner()
  (name, inp), = runner.get_input_details().items()
  outputs = runner.get_output_details()
  key = 'logits' if 'logits' in outputs else next(iter(outputs))
  return np.stack([tflite_ops.dequantize_output(
      runner(**{name: tflite_ops.quantize_input(image[None], inp)})[key][0],
      outputs[key]) for image in images])


def _post_training_int8(model: tf_keras.Model, size: int) -> bytes:
  """Model Garden's `int8_full` conversion, calibrated on random images."""
  converter = keras_converter.converter(model, [1, size, size, 3])
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  converter.representative_dataset = lambda: (
      [image[None]] for image in random_images(32, size, seed=2))
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
  converter.inference_input_type = tf.uint8
  converter.inference_output_type = tf.uint8
  return converter.convert()


def check_model(model_id: str, size: int, op_set: str, output_dir: str,
                method: str = 'qat',
                model_spec: mobilenet_v4_specs.ModelSpec | None = None
                ) -> Readiness:
  """Converts one random-weight model to int8 and checks the result.

  Args:
    model_id: A MobileNetV4 model id (with `model_spec`, its label).
    size: The square input size.
    op_set: The flat graph's op set (`'qat'` and `'ptq'`).
    output_dir: Where the .tflite file is written.
    method: `'qat'`, `'ptq'` or `'int8_full'` (see the module docstring).
    model_spec: A table that is not built in.
  """
  model = random_classifier(model_id, size, model_spec=model_spec)
  if method == 'qat':
    source, flat = qat.quantize_classifier_and_flat(model, (size, size),
                                                    op_set)
    calibration.calibrate(source, flat,
                          [random_images(8, size, seed) for seed in (2, 3)])
    tflite_model = qat.convert(source)
    name = f'{model_id}_{size}_{op_set}_qat.tflite'
  elif method == 'ptq':
    source = model
    tflite_model = ptq.quantize(
        model, (size, size), [random_images(8, size, seed) for seed in (2, 3)],
        ptq.Calibration(op_set=op_set))
    name = f'{model_id}_{size}_{op_set}_ptq.tflite'
  elif method == 'int8_full':
    source = model
    tflite_model = _post_training_int8(model, size)
    name = f'{model_id}_{size}_int8_full.tflite'
  else:
    raise ValueError(f"method={method!r} is not one of {METHODS}.")
  path = os.path.join(output_dir, name)
  with open(path, 'wb') as f:
    f.write(tflite_model)
  ops, problems = edgetpu_check.check(path)
  images = random_images(16, size, seed=4)
  want = source(images, training=False).numpy().ravel()
  got = _run(path, images).ravel()
  return Readiness(model_id, path, len(ops),
                   sum(op.is_float for op in ops), problems,
                   float(np.corrcoef(got, want)[0, 1]))


def _define_flags() -> None:
  """Flags of the command line (defined only when run as a program)."""
  flags.DEFINE_integer('input_size', 64, 'Square input size.')
  flags.DEFINE_enum('method', 'qat', list(METHODS),
                    'Quantization-aware, univision\'s post-training or '
                    'Model Garden\'s int8_full post-training.')
  flags.DEFINE_enum('op_set', 'edgetpu', list(flat_graph.OP_SETS),
                    'Ops the flat graph may use (qat, ptq).')
  flags.DEFINE_list('models', sorted(
      i for i, spec in mobilenet_v4_specs.MODEL_SPECS.items()
      if not spec.antialias), 'Model ids (integer-only quantization does '
                    'not take the anti-aliased ones yet).')
  flags.DEFINE_string('output_dir', '/tmp/qat_readiness',
                      'Where the .tflite files go.')


def main(_):
  args = flags.FLAGS
  os.makedirs(args.output_dir, exist_ok=True)
  method = {'qat': f'QAT, op set {args.op_set}',
            'ptq': f'post-training int8, op set {args.op_set}',
            'int8_full': "Model Garden's int8_full"}[args.method]
  print('| model | input | method | ops | float ops | Edge TPU check | '
        'corr(int8, Keras) |')
  print('|---|---|---|---|---|---|---|')
  for model_id in args.models:
    r = check_model(model_id, args.input_size, args.op_set, args.output_dir,
                    args.method)
    names = sorted({p.op.name for p in r.problems})
    verdict = 'READY' if not r.problems else (
        f'{len(r.problems)} problems ({", ".join(names)})')
    print(f'| {model_id} | {args.input_size} | {method} | '
          f'{r.num_ops} | {r.num_float_ops} | {verdict} | '
          f'{r.logits_correlation:.3f} |', flush=True)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
