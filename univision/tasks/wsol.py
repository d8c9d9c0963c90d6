"""The WSOL task: train on image labels at one level, localize by CAM.

Model Garden has no weakly supervised localization, so this task is ours,
on Model Garden's `base_task.Task` (its generic train step, loss scaling
and trainer). Training sees images and their labels at
`task.label_level` of the dataset's hierarchy only. Validation also
computes each image's CAM for its ground-truth class at that level, resizes
it to the input, and `aggregate_logs` feeds `wsol_metrics`' accumulators
on the host (as Model Garden's COCO evaluator does), so the logged metrics
are accuracy, MaxBoxAccV2 (and per IoU), MaxBoxAccV1, GT-known Loc, Top-1
Loc and, where records carry masks, PxAP (and, where they carry the mask
of the part that decides the label, the share of CAM mass on it). With `evaluation.protocol:
wsolevaluation` the host resizes the raw CAMs instead and every metric
follows the reference evaluator (`evaluation.wsolevaluation_protocol`).
"""
import functools
from typing import Any, Optional

import numpy as np
import tensorflow as tf, tf_keras
from official.common import dataset_fn
from official.core import base_task
from official.core import task_factory
from official.vision.dataloaders import input_reader_factory
from official.vision.modeling import backbones

from univision.configs import wsol as wsol_cfg
from univision.core import checkpoints
from univision.data import label_hierarchy
from univision.data import wsol_records
from univision.dataloaders import data_keys
from univision.dataloaders import wsol_input
from univision.evaluation import wsol_metrics
from univision.evaluation import wsolevaluation_protocol as reference
from univision.modeling import wsol_model


class _Evaluation:
  """Box and pixel accumulators over one validation run."""

  def __init__(self, config: wsol_cfg.Evaluation,
               image_size: tuple[int, int]):
    self.protocol = config.protocol
    if self.protocol == 'wsolevaluation':
      thresholds = reference.reference_grid(1.0 / config.num_thresholds)
      self.pixels = reference.PxAPAccumulator(thresholds)
    else:
      thresholds = wsol_metrics.threshold_grid(config.num_thresholds)
      self.pixels = wsol_metrics.PxAPAccumulator(thresholds=thresholds)
    self.boxes = wsol_metrics.BoxAccumulator(
        thresholds, tuple(config.iou_thresholds), config.protocol)
    self.parts = wsol_metrics.PartMassAccumulator()
    self.image_size = image_size
    self.masks = 0
    self.fixed_threshold = (config.gt_known_threshold
                            if config.gt_known_threshold >= 0 else None)

  def _normalized(self, cam: np.ndarray) -> np.ndarray:
    if self.protocol == 'wsolevaluation':  # A raw CAM: resized here.
      return reference.resize_and_normalize(cam, *self.image_size)
    return wsol_metrics.normalize_cam(cam)

  def update(self, logs: dict[str, np.ndarray]) -> None:
    for i, cam in enumerate(logs['cams']):
      cam = self._normalized(cam)
      boxes = logs['boxes'][i][:logs['num_boxes'][i]]
      self.boxes.update(cam, boxes, correct=bool(logs['correct'][i]))
      if logs['has_mask'][i]:
        self.pixels.update(cam, logs['mask'][i])
        self.masks += 1
      if logs['has_part'][i]:
        self.parts.update(cam, logs['part_mask'][i])

  def result(self) -> dict[str, float]:
    result = self.boxes.result(self.fixed_threshold)
    if self.masks:
      result['PxAP'] = self.pixels.result()['PxAP']
    if len(self.parts):
      result.update(self.parts.result())
    return {k: float(v) for k, v in result.items()}


def _local(value) -> np.ndarray:
  """A validation output as one array (replica results concatenated)."""
  if isinstance(value, (tuple, list)):
    return np.concatenate([np.asarray(v) for v in value])
  return np.asarray(value)


@task_factory.register_task_cls(wsol_cfg.WSOLTask)
class WSOLTask(base_task.Task):
  """Classification at a label level + CAM localization metrics."""

  _LOCALIZATION_KEYS = ('cams', 'boxes', 'num_boxes', 'mask', 'has_mask',
                        'part_mask', 'has_part', 'correct')

  @functools.cached_property
  def hierarchy(self) -> label_hierarchy.LabelHierarchy:
    return label_hierarchy.load(wsol_cfg.hierarchy_path(self.task_config))

  def build_model(self) -> wsol_model.WSOLModel:
    config = self.task_config
    if config.method not in wsol_cfg.METHODS:
      raise ValueError(f'task.method={config.method!r}; expected one of '
                       f'{wsol_cfg.METHODS}.')
    num_classes = self.hierarchy.num_classes(config.label_level)
    if config.model.num_classes not in (0, num_classes):
      raise ValueError(
          f'task.model.num_classes={config.model.num_classes}, but level '
          f'{config.label_level!r} of {wsol_cfg.hierarchy_path(config)} has '
          f'{num_classes} classes.')
    model = config.model
    regularizer = (tf_keras.regularizers.l2(config.l2_weight_decay / 2.0)
                   if config.l2_weight_decay else None)
    backbone = backbones.factory.build_backbone(
        input_specs=tf_keras.layers.InputSpec(shape=[None, *model.input_size]),
        backbone_config=model.backbone,
        norm_activation_config=model.norm_activation,
        l2_regularizer=regularizer)
    adl = config.adl.as_dict() if config.method == 'adl' else None
    return wsol_model.WSOLModel(
        backbone, num_classes, feature_level=model.feature_level,
        feature_dim=model.feature_dim, adl=adl,
        norm_momentum=model.norm_activation.norm_momentum,
        norm_epsilon=model.norm_activation.norm_epsilon,
        kernel_regularizer=regularizer)

  def initialize(self, model: tf_keras.Model) -> None:
    """Loads `task.init_checkpoint` into the backbone (or everything).

    See `checkpoints.restore_init_checkpoint`: errors name the config keys.
    """
    config = self.task_config
    checkpoints.restore_init_checkpoint(
        model, config.init_checkpoint, config.init_checkpoint_modules,
        config.model.backbone)

  def build_inputs(self, params: wsol_cfg.DataConfig,
                   input_context: Optional[tf.distribute.InputContext] = None
                   ) -> tf.data.Dataset:
    config = self.task_config
    where = data_keys.checked_input_path(params)
    hide = None
    if config.method == 'has':
      hide = wsol_input.HideAndSeek(config.hide_and_seek.grid_size,
                                    config.hide_and_seek.hide_probability)
    parser = wsol_input.Parser(
        config.model.input_size[:2], self.hierarchy, config.label_level,
        aug_rand_hflip=params.aug_rand_hflip, hide_and_seek=hide,
        max_boxes=params.max_boxes, dtype=params.dtype)
    mix = None
    if config.method == 'cutmix' and params.is_training:
      mix = functools.partial(
          wsol_input.cutmix,
          num_classes=self.hierarchy.num_classes(config.label_level),
          beta=config.cutmix.beta, probability=config.cutmix.probability)
    reader = input_reader_factory.input_reader_generator(
        params, dataset_fn=dataset_fn.pick_dataset_fn(params.file_type),
        decoder_fn=functools.partial(
            wsol_records.decode, where=where),
        parser_fn=parser.parse_fn(params.is_training), postprocess_fn=mix)
    return reader.read(input_context=input_context)

  def build_losses(self, labels, model_outputs, aux_losses=None) -> tf.Tensor:
    """Cross-entropy with class ids, or with CutMix's soft labels."""
    labels = labels['label'] if isinstance(labels, dict) else labels
    one_hot = (tf.cast(labels, tf.float32) if labels.shape.rank == 2
               else tf.one_hot(labels, tf.shape(model_outputs)[-1]))
    loss = tf.reduce_mean(tf_keras.losses.categorical_crossentropy(
        one_hot, tf.cast(model_outputs, tf.float32), from_logits=True,
        label_smoothing=self.task_config.label_smoothing))
    if aux_losses:
      loss += tf.add_n(aux_losses)
    return loss

  def build_metrics(self, training: bool = True) -> list[Any]:
    return [tf_keras.metrics.SparseCategoricalAccuracy(name='accuracy')]

  def process_metrics(self, metrics, labels, model_outputs, **kwargs) -> None:
    labels = labels['label'] if isinstance(labels, dict) else labels
    if labels.shape.rank == 2:  # CutMix: the larger share's class.
      labels = tf.argmax(labels, axis=-1)
    for metric in metrics:
      metric.update_state(labels, model_outputs)

  def validation_step(self, inputs, model: tf_keras.Model, metrics=None):
    images, labels = inputs
    logits = model(images, training=False)
    logs = {self.loss: self.build_losses(labels, logits, model.losses)}
    if metrics:
      self.process_metrics(metrics, labels, logits)
    cams = model.cams(images, labels['label'])
    size = self.task_config.model.input_size[:2]
    # The reference protocol resizes on the host (bicubic, as cv2 does).
    logs['cams'] = (cams if self.task_config.evaluation.protocol ==
                    'wsolevaluation' else tf.image.resize(
                        cams[..., None], size, method='bilinear')[..., 0])
    logs['correct'] = tf.equal(tf.argmax(logits, -1, output_type=tf.int32),
                               tf.cast(labels['label'], tf.int32))
    for key in ('boxes', 'num_boxes', 'mask', 'has_mask', 'part_mask',
                'has_part'):
      logs[key] = labels[key]
    return logs

  def aggregate_logs(self, state=None, step_outputs=None) -> _Evaluation:
    if state is None:
      state = _Evaluation(self.task_config.evaluation,
                          tuple(self.task_config.model.input_size[:2]))
    state.update({k: _local(step_outputs[k]) for k in self._LOCALIZATION_KEYS})
    return state

  def reduce_aggregated_logs(self, aggregated_logs, global_step=None
                             ) -> dict[str, float]:
    return aggregated_logs.result()
