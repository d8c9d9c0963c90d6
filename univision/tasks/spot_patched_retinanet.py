"""RetinaNet training a SpotPatch: learned gates choose the patch's layers.

SpotPatch (arXiv 2101.01260): the shared base stays frozen; batch norm and
the predictor (`task.patch`) are always in the task's patch, and every
other conv and dense layer gets a task copy and a gate
(`univision.modeling.spot_patch`). Each step draws the gates' noise, sets
the annealed temperature (`task.gates`), and minimises

  detection loss + size_weight * sum_l P(g_l = 1) * |W_l| / |W|

(size_weight ramped up from 0 over `task.gates.penalty_warmup_steps`)

over the patch's variables, the copies and the gate logits, so the
optimiser trades accuracy for patch size (the logits with plain gradient
steps when `task.gates.learning_rate` > 0). The copies start as the shared
kernels once the base is restored (`initialize`).
"""
from typing import Any

import tensorflow as tf, tf_keras
from official.core import task_factory

from univision.configs import retinanet as retinanet_cfg
from univision.modeling import patches
from univision.modeling import spot_patch
from univision.modeling.layers import spot_gate
from univision.tasks import gradient_steps
from univision.tasks import patched_retinanet


def penalty_weight(step: tf.Tensor, gates: Any) -> tf.Tensor:
  """lambda at `step`: `size_weight`, ramped up over `penalty_warmup_steps`."""
  if not gates.penalty_warmup_steps:
    return tf.constant(gates.size_weight, tf.float32)
  ramp = tf.cast(step, tf.float32) / gates.penalty_warmup_steps
  return gates.size_weight * tf.minimum(ramp, 1.0)


@task_factory.register_task_cls(retinanet_cfg.SpotPatchedRetinaNetTask)
class SpotPatchedRetinaNetTask(patched_retinanet.PatchedRetinaNetTask):
  """Trains `task.patch` plus gated copies of the other layers."""

  def build_model(self) -> tf_keras.Model:
    """The frozen detector with a `spot_patch` attribute (tracked)."""
    gates = self.task_config.gates
    if gates.granularity not in spot_patch.GRANULARITIES:
      raise ValueError(f'task.gates.granularity: {gates.granularity!r}; '
                       f'choose from {spot_patch.GRANULARITIES}.')
    if (gates.size_weight < 0 or gates.temperature_steps < 1 or
        gates.learning_rate < 0 or gates.penalty_warmup_steps < 0):
      raise ValueError(f'task.gates: size_weight, learning_rate and '
                       f'penalty_warmup_steps must be >= 0 and '
                       f'temperature_steps >= 1, got {gates.size_weight}, '
                       f'{gates.learning_rate}, {gates.penalty_warmup_steps} '
                       f'and {gates.temperature_steps}.')
    spot_gate.temperature_at(0, gates.temperature_start,
                             gates.temperature_end, gates.temperature_steps)
    model = super().build_model()
    size = self.task_config.model.input_size
    model(tf.zeros([1, *size]), training=False)  # Builds every layer.
    self._total_parameters = patches.count_parameters(model.weights)
    model.spot_patch = spot_patch.attach(
        model, exclude=patches.predictor_layers(model),
        initial_logit=gates.initial_logit,
        initial_temperature=gates.temperature_start,
        granularity=gates.granularity)
    # Plain gradient steps for the logits (`task.gates.learning_rate`); an
    # SGD optimizer without momentum keeps no state worth checkpointing.
    self._gate_optimizer = (tf_keras.optimizers.SGD(gates.learning_rate)
                            if gates.learning_rate > 0 else None)
    return model

  def initialize(self, model: tf_keras.Model) -> None:
    """Restores the shared base, then starts the copies from it."""
    super().initialize(model)
    model.spot_patch.reset_copies()

  def train_step(self, inputs: tuple[Any, Any], model: tf_keras.Model,
                 optimizer: tf_keras.optimizers.Optimizer,
                 metrics: list[Any] | None = None) -> dict[str, Any]:
    """One step on the patch, copies and gates: loss + size penalty."""
    features, labels = inputs
    gates = self.task_config.gates
    patch = model.spot_patch
    patch.resample()
    patch.set_temperature(spot_gate.temperature_at(
        optimizer.iterations, gates.temperature_start, gates.temperature_end,
        gates.temperature_steps))
    variables = patches.trainable(
        patches.select(model, self.task_config.patch))
    variables += patch.variables_to_train()
    logits = []
    if self._gate_optimizer is not None:
      logit_ids = {id(g.logit) for g in patch.gates}
      logits = [v for v in variables if id(v) in logit_ids]
      variables = [v for v in variables if id(v) not in logit_ids]
    with tf.GradientTape() as tape:
      outputs = tf.nest.map_structure(lambda t: tf.cast(t, tf.float32),
                                      model(features, training=True))
      total, cls_loss, box_loss, model_loss = self.build_losses(
          outputs=outputs, labels=labels, aux_losses=model.losses)
      size_penalty = patch.penalty(self._total_parameters)
      total += penalty_weight(optimizer.iterations, gates) * size_penalty
      scaled = gradient_steps.scaled_loss(total, optimizer)
    grads = gradient_steps.gradients(tape, scaled, variables + logits,
                                     optimizer)
    optimizer.apply_gradients(zip(grads[:len(variables)], variables))
    if logits:
      self._gate_optimizer.apply_gradients(
          zip(grads[len(variables):], logits))
    losses = {'total_loss': total, 'cls_loss': cls_loss,
              'box_loss': box_loss, 'model_loss': model_loss}
    logs = gradient_steps.update_metrics({self.loss: total}, losses, metrics)
    logs['expected_patch_share'] = size_penalty
    return logs
