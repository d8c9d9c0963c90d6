"""RetinaNet that trains only a model patch; the shared base stays frozen.

Model Garden's RetinaNet task updates `model.trainable_variables`, a
per-layer notion; a patch is per variable (e.g. a conv's bias but not its
kernel), so this task's training step differentiates the loss with respect
to the patch's variables only. Batch norms outside the patch are switched to
inference mode (`trainable = False`), so their statistics stay the base's;
so are those inside it unless `bn_statistics: batch` (their scale and shift
still train: the gradient is taken with respect to the variables).
Inputs, losses, metrics and evaluation are Model Garden's (its detection
generator's v2 NMS cut to the scored boxes, for the same detections faster:
`modeling/layers/scored_nms_generator.py`).
"""
from typing import Any

import tensorflow as tf, tf_keras
from official.core import task_factory
from official.vision.tasks import retinanet as mg_retinanet_task

from univision.configs import retinanet as retinanet_cfg
from univision.modeling import patches
from univision.modeling.layers import scored_nms_generator
from univision.tasks import gradient_steps


@task_factory.register_task_cls(retinanet_cfg.PatchedRetinaNetTask)
class PatchedRetinaNetTask(mg_retinanet_task.RetinaNetTask):
  """Trains the variables of `task.patch` only."""

  def build_model(self) -> tf_keras.Model:
    if self.task_config.bn_statistics not in ('frozen', 'batch'):
      raise ValueError(f'task.bn_statistics: '
                       f'{self.task_config.bn_statistics!r}; choose '
                       "'frozen' or 'batch'.")
    model = scored_nms_generator.with_scored_nms(super().build_model())
    patch_ids = {id(v) for v in patches.select(model, self.task_config.patch)}
    batch_statistics = self.task_config.bn_statistics == 'batch'
    for layer in model.submodules:
      if isinstance(layer, patches.NORM_LAYERS) and not (
          batch_statistics and any(id(v) in patch_ids for v in layer.weights)):
        layer.trainable = False
    return model

  def train_step(self, inputs: tuple[Any, Any], model: tf_keras.Model,
                 optimizer: tf_keras.optimizers.Optimizer,
                 metrics: list[Any] | None = None) -> dict[str, Any]:
    """One step on the patch variables: Model Garden's losses and logs."""
    features, labels = inputs
    variables = patches.trainable(
        patches.select(model, self.task_config.patch))
    with tf.GradientTape() as tape:
      tape.watch(variables)
      outputs = tf.nest.map_structure(lambda t: tf.cast(t, tf.float32),
                                      model(features, training=True))
      total, cls_loss, box_loss, model_loss = self.build_losses(
          outputs=outputs, labels=labels, aux_losses=model.losses)
      scaled = gradient_steps.scaled_loss(total, optimizer)
    gradient_steps.apply_gradients(tape, scaled, variables, optimizer)
    losses = {'total_loss': total, 'cls_loss': cls_loss,
              'box_loss': box_loss, 'model_loss': model_loss}
    return gradient_steps.update_metrics({self.loss: total}, losses, metrics)
