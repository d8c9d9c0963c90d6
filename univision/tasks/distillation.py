"""Knowledge distillation of a classifier: MobileNetV4's recipe.

Model Garden has no classification distillation task; this one is univision's
classification task with (1) a teacher: any registered classifier
(`task.teacher`), built next to the student, loaded from
`task.teacher_checkpoint`, frozen and always run in inference mode, (2) the
loss `alpha * CE(labels, student) + (1 - alpha) * T^2 *
KL(softmax(teacher / T) || softmax(student / T))` (`distillation_loss`), and
(3) training inputs from dynamic dataset mixing
(`univision.dataloaders.view_mixing`): each example is a view drawn with the
`task.mixing` weights; the teacher sees the same (augmented, mixed) images
as the student, and the label term uses the mixed labels. Validation reports
the student's accuracy and, for reference, the teacher's
(`teacher_accuracy`).
"""
from typing import Any, Dict, List, Optional, Tuple

from absl import logging
import tensorflow as tf, tf_keras
from official.common import dataset_fn
from official.core import task_factory
from official.vision.configs import image_classification as mg_ic
from official.vision.dataloaders import input_reader
from official.vision.dataloaders import input_reader_factory
from official.vision.modeling import factory

from univision.configs import distillation as distill_cfg
from univision.core import checkpoints
from univision.dataloaders import view_mixing
from univision.tasks import image_classification


def distillation_loss(labels: tf.Tensor, student_logits: tf.Tensor,
                      teacher_logits: tf.Tensor, alpha: float,
                      temperature: float, label_smoothing: float = 0.0
                      ) -> Dict[str, tf.Tensor]:
  """The distillation loss, averaged over the batch.

  Args:
    labels: [batch, classes] one-hot or mixed labels.
    student_logits: [batch, classes].
    teacher_logits: [batch, classes]; no gradient flows into them.
    alpha: Weight of the label cross-entropy; 1 - alpha weighs the KL term.
    temperature: Softmax temperature T of the KL term, which is scaled by
      T^2 so that its gradients keep their size as T changes.
    label_smoothing: Label smoothing of the cross-entropy term.

  Returns:
    'loss' (the weighted sum), 'ce_loss' (label cross-entropy) and 'kd_loss'
    (T^2 * KL), scalars.
  """
  ce = tf_keras.losses.categorical_crossentropy(
      labels, student_logits, from_logits=True,
      label_smoothing=label_smoothing)
  teacher_log_p = tf.nn.log_softmax(
      tf.stop_gradient(teacher_logits) / temperature)
  student_log_p = tf.nn.log_softmax(student_logits / temperature)
  kl = tf.reduce_sum(tf.exp(teacher_log_p) * (teacher_log_p - student_log_p),
                     axis=-1)
  ce_loss = tf.reduce_mean(ce)
  kd_loss = temperature**2 * tf.reduce_mean(kl)
  return {'loss': alpha * ce_loss + (1.0 - alpha) * kd_loss,
          'ce_loss': ce_loss, 'kd_loss': kd_loss}


@task_factory.register_task_cls(distill_cfg.DistillationTask)
class DistillationTask(image_classification.ImageClassificationTask):
  """A student classifier trained from a frozen teacher and the labels."""

  def __init__(self, params: distill_cfg.DistillationTask,
               logging_dir: Optional[str] = None, name: Optional[str] = None):
    super().__init__(params, logging_dir=logging_dir, name=name)
    self._teacher = None

  @property
  def teacher(self) -> tf_keras.Model:
    """The frozen teacher (built by `build_model`)."""
    if self._teacher is None:
      raise ValueError('The teacher is built by build_model(); call it first.')
    return self._teacher

  def _check(self) -> None:
    """Checks the distillation keys of the task config."""
    config = self.task_config
    d = config.distillation
    if not 0.0 <= d.alpha <= 1.0:
      raise ValueError(f'task.distillation.alpha={d.alpha} must be in [0, 1].')
    if d.temperature <= 0:
      raise ValueError(
          f'task.distillation.temperature={d.temperature} must be > 0.')
    if config.teacher.num_classes != config.model.num_classes:
      raise ValueError(
          f'task.teacher.num_classes={config.teacher.num_classes} must equal '
          f'task.model.num_classes={config.model.num_classes}.')
    if config.train_data.is_multilabel:
      raise ValueError('task.train_data.is_multilabel is not supported by '
                       'distillation.')
    if config.train_data.mixup_and_cutmix:
      raise ValueError('task.train_data.mixup_and_cutmix: use '
                       'task.mixing.extreme_mixup_weight for Mixup views.')
    view_mixing.check_weights(config.mixing.weights(), 'task.mixing')
    if not config.teacher_checkpoint:
      raise ValueError('task.teacher_checkpoint is empty: name the '
                       "teacher's checkpoint (prefix or training folder).")

  def build_model(self) -> tf_keras.Model:
    """Builds the student, and builds and loads the frozen teacher."""
    self._check()
    self._teacher = self.build_teacher()
    return super().build_model()

  def build_teacher(self) -> tf_keras.Model:
    """The teacher of `task.teacher`, from `task.teacher_checkpoint`, frozen.

    Raises:
      FileNotFoundError: naming `task.teacher_checkpoint` if it holds no
        checkpoint.
      ValueError: naming `task.teacher_checkpoint` and `task.teacher` when
        the checkpoint does not hold that model.
    """
    config = self.task_config.teacher
    teacher = factory.build_classification_model(
        input_specs=tf_keras.layers.InputSpec(shape=[None, *config.input_size]),
        model_config=config)
    teacher(tf_keras.Input(config.input_size), training=False)
    path = self.task_config.teacher_checkpoint
    prefix = checkpoints.resolve_checkpoint(path, 'task.teacher_checkpoint')
    try:
      tf.train.Checkpoint(model=teacher).read(
          prefix).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError) as e:
      raise ValueError(
          f'task.teacher_checkpoint={path} does not hold task.teacher '
          f'(backbone {config.backbone.type} '
          f'{config.backbone.get().as_dict()}): {str(e).splitlines()[0]}'
      ) from e
    teacher.trainable = False
    logging.info('Loaded the teacher from %s.', prefix)
    return teacher

  def teacher_logits(self, images: tf.Tensor) -> tf.Tensor:
    """The frozen teacher's float32 logits, in inference mode."""
    size = self.task_config.teacher.input_size[:2]
    if list(images.shape[1:3]) != list(size):
      images = tf.image.resize(images, size)
    return tf.stop_gradient(
        tf.cast(self.teacher(images, training=False), tf.float32))

  def build_inputs(
      self,
      params: mg_ic.DataConfig,
      input_context: Optional[tf.distribute.InputContext] = None
  ) -> tf.data.Dataset:
    """Validation: the plain pipeline. Training: the mixed views."""
    if not params.is_training:
      return super().build_inputs(params, input_context)
    self._check()
    image_classification.check_no_repeated_augment(params)
    mixing = self.task_config.mixing
    randaugment = params.replace(aug_type={
        'type': 'randaug', 'randaug': mixing.randaugment.as_dict()})
    mixer = view_mixing.ViewMixer(
        plain_parse_fn=self.build_parser(params).parse_fn(True),
        randaugment_parse_fn=self.build_parser(randaugment).parse_fn(True),
        weights=mixing.weights(),
        num_classes=self.task_config.model.num_classes,
        mixup_alpha=mixing.mixup_alpha,
        global_batch_size=params.global_batch_size,
        drop_remainder=params.drop_remainder)
    reader = input_reader_factory.input_reader_generator(
        params,
        dataset_fn=dataset_fn.pick_dataset_fn(params.file_type),
        decoder_fn=self.build_decoder(params).decode,
        combine_fn=input_reader.create_combine_fn(params),
        parser_fn=mixer.parse,
        transform_and_batch_fn=mixer.batch)
    return reader.read(input_context=input_context)

  def build_metrics(self, training: bool = True
                    ) -> List[tf_keras.metrics.Metric]:
    """Student accuracy; the loss terms (training) or teacher accuracy."""
    k = self.task_config.evaluation.top_k
    if training:  # Labels are one-hot or mixed.
      return [tf_keras.metrics.CategoricalAccuracy(name='accuracy'),
              tf_keras.metrics.TopKCategoricalAccuracy(
                  k=k, name=f'top_{k}_accuracy'),
              tf_keras.metrics.Mean(name='ce_loss'),
              tf_keras.metrics.Mean(name='kd_loss')]
    return [tf_keras.metrics.SparseCategoricalAccuracy(name='accuracy'),
            tf_keras.metrics.SparseTopKCategoricalAccuracy(
                k=k, name=f'top_{k}_accuracy'),
            tf_keras.metrics.SparseCategoricalAccuracy(
                name='teacher_accuracy')]

  def _losses(self, labels: tf.Tensor, outputs: tf.Tensor,
              teacher_outputs: tf.Tensor, model: tf_keras.Model
              ) -> Dict[str, tf.Tensor]:
    """`distillation_loss` from the config, plus the model's own losses."""
    d = self.task_config.distillation
    losses = distillation_loss(
        labels, outputs, teacher_outputs, alpha=d.alpha,
        temperature=d.temperature,
        label_smoothing=self.task_config.losses.label_smoothing)
    if model.losses:
      losses['loss'] += tf.add_n(model.losses)
    return losses

  def train_step(self, inputs: Tuple[tf.Tensor, tf.Tensor],
                 model: tf_keras.Model,
                 optimizer: tf_keras.optimizers.Optimizer,
                 metrics: Optional[List[Any]] = None) -> Dict[str, Any]:
    """One student step on (images, [batch, classes] labels).

    Only the student's trainable variables get gradients; the teacher runs
    in inference mode outside the gradient tape.
    """
    images, labels = inputs
    teacher_outputs = self.teacher_logits(images)
    num_replicas = tf.distribute.get_strategy().num_replicas_in_sync
    with tf.GradientTape() as tape:
      outputs = tf.cast(model(images, training=True), tf.float32)
      losses = self._losses(labels, outputs, teacher_outputs, model)
      scaled_loss = losses['loss'] / num_replicas
      if isinstance(optimizer, tf_keras.mixed_precision.LossScaleOptimizer):
        scaled_loss = optimizer.get_scaled_loss(scaled_loss)
    tvars = model.trainable_variables
    grads = tape.gradient(scaled_loss, tvars)
    if isinstance(optimizer, tf_keras.mixed_precision.LossScaleOptimizer):
      grads = optimizer.get_unscaled_gradients(grads)
    optimizer.apply_gradients(list(zip(grads, tvars)))
    for metric in metrics or []:
      if metric.name in losses:
        metric.update_state(losses[metric.name])
      else:
        metric.update_state(labels, outputs)
    return {self.loss: losses['loss']}

  def validation_step(self, inputs: Tuple[tf.Tensor, tf.Tensor],
                      model: tf_keras.Model,
                      metrics: Optional[List[Any]] = None) -> Dict[str, Any]:
    """Student and teacher on (images, class ids)."""
    images, labels = inputs
    outputs = tf.cast(self.inference_step(images, model), tf.float32)
    teacher_outputs = self.teacher_logits(images)
    one_hot = tf.one_hot(labels, self.task_config.model.num_classes)
    losses = self._losses(one_hot, outputs, teacher_outputs, model)
    for metric in metrics or []:
      metric.update_state(
          labels,
          teacher_outputs if metric.name == 'teacher_accuracy' else outputs)
    return {self.loss: losses['loss']}
