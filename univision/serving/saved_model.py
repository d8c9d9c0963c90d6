"""SavedModel export of univision experiments through Model Garden's library.

The SavedModel's `serving_default` signature follows Model Garden's
conventions (`input_type`: `image_tensor` uint8 [batch, h, w, 3],
`image_bytes` encoded images, `tf_example` serialized examples, or `tflite`).
A QAT experiment's checkpoint is served by its fake-quantized model; a
RetinaNet experiment by Model Garden's detection module. With a model patch
(`univision.modeling.patches`) the export is the shared base checkpoint with
the patch applied: one SavedModel per task. An `image_bytes` input that is
not an image fails with an error naming its index (`image_bytes`).

The SavedModel is written without Keras' per-layer call traces
(`without_keras_traces`): Model Garden's exporter saves a `tf.Module` that
holds the Keras model, and by default tf_keras then traces every layer's
call functions into the SavedModel, which nothing that serves the
signatures reads. That tracing was two thirds of an export's time (a 64 px
MobileNetV4 RetinaNet: 100 s for three exports before, 32 s after). The
signatures, variables and the layers' configs are still saved.
"""
import contextlib

import tensorflow as tf, tf_keras
from official.core import export_base
from official.vision.configs import retinanet as mg_retinanet_cfg
from official.vision.serving import detection
from official.vision.serving import export_saved_model_lib
from official.vision.serving import image_classification
from official.vision.ops import preprocess_ops
from tf_keras.src.saving.legacy.saved_model import utils as keras_saved_model_utils  # pylint: disable=g-direct-tensorflow-import

from univision.configs import image_classification_qat as qat_cfg
from univision.core import checkpoints
from univision.core import config_parsing
from univision.core import image_normalization
from univision.modeling import patches
from univision.quantization import qat
from univision.serving import image_bytes

SIGNATURE_INPUT_TYPES = ('image_tensor', 'image_bytes', 'tf_example', 'tflite')


def without_keras_traces() -> contextlib.AbstractContextManager:
  """A scope in which `tf.saved_model.save` skips Keras layer call traces.

  tf_keras' own switch (`model.save(..., save_traces=False)`), which only
  its private options scope reaches for a `tf.saved_model.save` of a
  module holding a model.
  """
  return keras_saved_model_utils.keras_option_scope(save_traces=False)


class ClassificationModule(image_bytes.ImageBytesChecks,
                           image_classification.ClassificationModule):
  """Model Garden's classification module, pre-processing as evaluated.

  Bad `image_bytes` are named; images are centre-cropped by
  `task.validation_data.center_crop_fraction` (if its `aug_crop`) and
  resized with its `tf_resize_method`, as Model Garden's evaluation parser
  does (Model Garden's module: always 0.875 and bilinear),
  then normalized by `task.preprocessing` (Model Garden's: ImageNet's mean
  and std), so a served image is prepared as the evaluated ones are.
  """

  def _crop_and_resize(self, image):
    data = self.params.task.validation_data
    if data.aug_crop:  # As Model Garden's evaluation parser crops.
      image = preprocess_ops.center_crop_image(image,
                                               data.center_crop_fraction)
    size = self._input_image_size
    image = tf.image.resize(image, size, method=data.tf_resize_method)
    return tf.reshape(image, [size[0], size[1], 3])

  def _build_inputs(self, image):
    preprocessing = self.params.task.preprocessing
    return image_normalization.renormalize(
        super()._build_inputs(image), preprocessing.mean_rgb,
        preprocessing.stddev_rgb)


class DetectionModule(image_bytes.ImageBytesChecks, detection.DetectionModule):
  """Model Garden's detection module; bad `image_bytes` named."""


class QATClassificationModule(ClassificationModule):
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
           extra_signatures: list[str] | None = None,
           patch_path: str | None = None) -> str:
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
    patch_path: A model patch (.npz) applied on top of the checkpoint (the
      shared base), e.g. one task's patch.

  Returns:
    The SavedModel folder.
  """
  params = config_parsing.parse_experiment(experiment, config_files,
                                           params_override)
  return export_from_params(params, checkpoint_path, export_dir, input_type,
                            input_image_size, batch_size, extra_signatures,
                            patch_path)


def _export_module(params, batch_size: int | None, size: list[int],
                   input_type: str) -> export_base.ExportModule:
  """Model Garden's export module for the task (QAT: ours)."""
  kwargs = dict(params=params, batch_size=batch_size, input_image_size=size,
                input_type=input_type, num_channels=3)
  if isinstance(params.task, qat_cfg.ImageClassificationQATTask):
    return QATClassificationModule(**kwargs)
  if isinstance(params.task, mg_retinanet_cfg.RetinaNetTask):
    return DetectionModule(**kwargs)
  return ClassificationModule(**kwargs)


def _restore_with_patch(module: export_base.ExportModule,
                        checkpoint_path: str, patch_path: str,
                        size: list[int]) -> None:
  """Restores the base checkpoint into the module's model, then the patch."""
  model = module.model
  model(tf.zeros([1, *size, 3]), training=False)  # Creates every variable.
  tf.train.Checkpoint(model=model).read(
      checkpoint_path).expect_partial().assert_existing_objects_matched()
  patches.load(model, patch_path)


def export_from_params(params, checkpoint_path: str, export_dir: str,
                       input_type: str = 'image_tensor',
                       input_image_size: list[int] | None = None,
                       batch_size: int | None = None,
                       extra_signatures: list[str] | None = None,
                       patch_path: str | None = None) -> str:
  """`export` for an already parsed experiment config."""
  size = [int(s) for s in input_image_size or
          params.task.model.input_size[:2]]
  function_keys = {input_type: 'serving_default'}
  for extra in extra_signatures or []:
    if extra not in SIGNATURE_INPUT_TYPES:
      raise ValueError(f'Unknown signature input type {extra!r}; choose from '
                       f'{", ".join(SIGNATURE_INPUT_TYPES)}.')
    function_keys.setdefault(extra, f'serving_{extra}')
  export_module = _export_module(params, batch_size, size, input_type)
  checkpoint_path = checkpoints.resolve_checkpoint(checkpoint_path)
  if patch_path:
    _restore_with_patch(export_module, checkpoint_path, patch_path, size)
    checkpoint_path = None  # Restored here; the library must not overwrite.
  with without_keras_traces():
    export_saved_model_lib.export_inference_graph(
        export_module=export_module, input_type=input_type,
        batch_size=batch_size, input_image_size=size, params=params,
        checkpoint_path=checkpoint_path, export_dir=export_dir,
        export_checkpoint_subdir='checkpoint',
        export_saved_model_subdir='saved_model', function_keys=function_keys)
  return f'{export_dir}/saved_model'
