"""Top-1 of TFLite classifiers on an experiment's validation data, and agreement.

  python -m univision.quantization.evaluate_tflite \
    --experiment=mnv4_fashion_mnist --config_file=<demo yaml> \
    --tflite=runs/demo/model_float.tflite --tflite=runs/demo_qat/model.tflite

Runs every model with `ai_edge_litert` (the TFLite runtime phones use) on the
same images - the experiment's `validation_data`, read and preprocessed by the
experiment's task - and prints each model's top-1 accuracy, plus, for every
model after the first, how often its top-1 class agrees with the first's and
the mean / max absolute difference of their class probabilities.

Models must be Model Garden `tflite`-input exports (batch 1, normalized
images; `export.py --tflite_path`). Integer inputs are quantized with the
model's own input scale and zero point, integer outputs dequantized.
"""
import dataclasses
import sys

from absl import app
from absl import flags
import numpy as np
from official.core import task_factory

from univision.core import config_parsing
from univision.quantization import tflite_ops


class TFLiteClassifier:
  """A Model Garden TFLite classifier: normalized images in, probs out."""

  def __init__(self, path: str):
    self.path = path
    interpreter = tflite_ops.load_interpreter(path)
    self._runner = interpreter.get_signature_runner()
    (self._input_name, self._input), = (
        self._runner.get_input_details().items())
    outputs = self._runner.get_output_details()
    if 'probs' not in outputs:
      raise ValueError(f'{path}: no `probs` output (outputs: '
                       f'{sorted(outputs)}); export it with export.py.')
    self._output = outputs['probs']

  def probabilities(self, image: np.ndarray) -> np.ndarray:
    """Class probabilities for one [height, width, 3] normalized image."""
    x = tflite_ops.quantize_input(image[None].astype(np.float32), self._input)
    y = self._runner(**{self._input_name: x})['probs'][0]
    return tflite_ops.dequantize_output(y, self._output)


@dataclasses.dataclass(frozen=True)
class Comparison:
  """One model's results on the evaluated images."""
  path: str
  top1: float
  agreement: float  # Top-1 class equal to the reference model's.
  mean_abs_prob_diff: float
  max_abs_prob_diff: float


def predict(classifier: TFLiteClassifier, images: np.ndarray) -> np.ndarray:
  """[images, classes] probabilities of `classifier`, one image at a time."""
  return np.stack([classifier.probabilities(image) for image in images])


def compare_predictions(predictions: list[tuple[str, np.ndarray]],
                        labels: np.ndarray) -> list[Comparison]:
  """Top-1 of each (path, `predict` output), agreement with the first's.

  Lets a caller that compares many models with one reference run the
  reference once.
  """
  reference = predictions[0][1]
  results = []
  for path, p in predictions:
    diff = np.abs(p - reference)
    results.append(Comparison(
        path=path,
        top1=float(np.mean(p.argmax(-1) == labels)),
        agreement=float(np.mean(p.argmax(-1) == reference.argmax(-1))),
        mean_abs_prob_diff=float(diff.mean()),
        max_abs_prob_diff=float(diff.max())))
  return results


def compare(classifiers: list[TFLiteClassifier], images: np.ndarray,
            labels: np.ndarray) -> list[Comparison]:
  """Top-1 of every classifier, and agreement with the first one."""
  return compare_predictions([(c.path, predict(c, images))
                              for c in classifiers], labels)


def validation_examples(params, max_examples: int | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
  """The experiment's preprocessed validation images and labels."""
  task = task_factory.get_task(params.task)
  dataset = task.build_inputs(params.task.validation_data)
  images, labels, count = [], [], 0
  for batch_images, batch_labels in dataset.as_numpy_iterator():
    images.append(batch_images)
    labels.append(batch_labels)
    count += len(batch_labels)
    if max_examples and count >= max_examples:
      break
  images, labels = np.concatenate(images), np.concatenate(labels)
  return images[:max_examples], labels[:max_examples]


def _define_flags() -> None:
  """Flags of the command line (defined only when run as a program)."""
  flags.DEFINE_string('experiment', None, 'Registered experiment.')
  flags.DEFINE_multi_string('config_file', None,
                            'YAML overrides, applied in order.')
  flags.DEFINE_string('params_override', '', 'Final YAML/JSON/CSV overrides.')
  flags.DEFINE_multi_string(
      'tflite', None,
      'TFLite models; the first is the reference for agreement.')
  flags.DEFINE_integer('max_examples', None,
                       'Evaluate at most this many images.')


def main(_):
  # The program entry point registers the experiments.
  from univision import registry_imports  # pylint: disable=g-import-not-at-top,unused-import
  args = flags.FLAGS
  params = config_parsing.parse_experiment(
      args.experiment, args.config_file, args.params_override)
  classifiers = [TFLiteClassifier(p) for p in args.tflite]
  images, labels = validation_examples(params, args.max_examples)
  print(f'{len(labels)} images of task.validation_data.input_path='
        f'{params.task.validation_data.input_path}')
  for r in compare(classifiers, images, labels):
    print(f'{r.path}: top-1 {100 * r.top1:.2f}%, top-1 agreement with '
          f'{classifiers[0].path} {100 * r.agreement:.2f}%, |probs diff| '
          f'mean {r.mean_abs_prob_diff:.4f} max {r.max_abs_prob_diff:.4f}')


if __name__ == '__main__':
  _define_flags()
  flags.mark_flags_as_required(['experiment', 'tflite'])
  sys.exit(app.run(main))
