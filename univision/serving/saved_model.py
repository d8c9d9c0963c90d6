"""SavedModel export of univision experiments through Model Garden's library.

The SavedModel's `serving_default` signature follows Model Garden's
conventions (`input_type`: `image_tensor` uint8 [batch, h, w, 3],
`image_bytes` encoded images, `tf_example` serialized examples, or `tflite`).
A QAT experiment's checkpoint is served by its fake-quantized model.
"""
import tensorflow as tf, tf_keras
from official.vision.serving import export_saved_model_lib
from official.vision.serving import image_classification

from univision import registry_imports  # pylint: disable=unused-import
from univision.configs import image_classification_qat as qat_cfg
from univision.core import checkpoints
from univision.core import config_parsing
from univision.quantization import qat

SIGNATURE_INPUT_TYPES = ('image_tensor', 'image_bytes', 'tf_example', 'tflite')


class QATClassificationModule(image_classification.ClassificationModule):
  """Model Garden's classification export module serving a QAT model.

  The fake-quantized model is built at the export size, so that its
  checkpoint (written by the QAT task) restores into it; converted with
  `quant_type='qat'` it becomes an integer-only TFLite model.
  """

  def _build_model(self) -> tf_keras.Model:
    float_model = super()._build_model()
    return qat.quantize_classifier(float_model,
                                   tuple(self._input_image_size),
                                   self.params.task.quantization.op_set)


def export(experiment: str, config_files: list[str] | None,
           params_override: str, checkpoint_path: str, export_dir: str,
           input_type: str = 'image_tensor',
           input_image_size: list[int] | None = None,
           batch_size: int | None = None,
           extra_signatures: list[str] | None = None) -> str:
  """Exports an experiment's model from a checkpoint; returns its folder.

  Args:
    experiment: A registered experiment name.
    config_files: YAML overrides, applied in order.
    params_override: Final overrides (YAML/JSON/CSV string).
    checkpoint_path: A checkpoint, or a folder (its latest checkpoint).
    export_dir: The output folder; the SavedModel goes to `saved_model/`.
    input_type: The serving input type.
    input_image_size: [height, width]; default: the model's input size.
    batch_size: A fixed batch size, or None for a dynamic one.
    extra_signatures: More input types to serve, each as signature
      `serving_<input type>` next to `serving_default` (`input_type`).

  Returns:
    The SavedModel folder.
  """
  params = config_parsing.parse_experiment(experiment, config_files,
                                           params_override)
  return export_from_params(params, checkpoint_path, export_dir, input_type,
                            input_image_size, batch_size, extra_signatures)


def export_from_params(params, checkpoint_path: str, export_dir: str,
                       input_type: str = 'image_tensor',
                       input_image_size: list[int] | None = None,
                       batch_size: int | None = None,
                       extra_signatures: list[str] | None = None) -> str:
  """`export` for an already parsed experiment config."""
  size = input_image_size or params.task.model.input_size[:2]
  function_keys = {input_type: 'serving_default'}
  for extra in extra_signatures or []:
    if extra not in SIGNATURE_INPUT_TYPES:
      raise ValueError(f'Unknown signature input type {extra!r}; choose from '
                       f'{", ".join(SIGNATURE_INPUT_TYPES)}.')
    function_keys.setdefault(extra, f'serving_{extra}')
  export_module = None
  if isinstance(params.task, qat_cfg.ImageClassificationQATTask):
    export_module = QATClassificationModule(
        params=params, batch_size=batch_size,
        input_image_size=[int(s) for s in size], input_type=input_type,
        num_channels=3)
  export_saved_model_lib.export_inference_graph(
      export_module=export_module,
      input_type=input_type,
      batch_size=batch_size,
      input_image_size=[int(s) for s in size],
      params=params,
      checkpoint_path=checkpoints.resolve_checkpoint(checkpoint_path),
      export_dir=export_dir,
      export_checkpoint_subdir='checkpoint',
      export_saved_model_subdir='saved_model',
      function_keys=function_keys)
  return f'{export_dir}/saved_model'
