"""Image classification on weak labels: MAWS's weakly supervised stage.

univision's `ImageClassificationTask` whose decoder weakens the labels
(`univision.dataloaders.maws_weak_labels`: map to groups, then flip a fixed
fraction of the training labels); everything else, including the
`init_checkpoint` that starts it from an MAE encoder, is unchanged.
"""
from typing import Any

import tf_keras
from official.core import task_factory
from official.vision.configs import image_classification as mg_ic

from univision.configs import maws as maws_cfg
from univision.dataloaders import maws_weak_labels
from univision.tasks import image_classification


@task_factory.register_task_cls(maws_cfg.WeakLabelClassificationTask)
class WeakLabelClassificationTask(image_classification.ImageClassificationTask):
  """Classification whose labels are weakened as `task.weak_labels` says."""

  def _check(self) -> None:
    weak = self.task_config.weak_labels
    maws_weak_labels.check(weak.label_map, weak.noise_rate,
                           self.task_config.model.num_classes,
                           'task.weak_labels')

  def build_model(self) -> tf_keras.Model:
    self._check()
    return super().build_model()

  def build_decoder(self, params: mg_ic.DataConfig) -> Any:
    """The checked decoder, weakening labels (no flips for validation)."""
    self._check()
    weak = self.task_config.weak_labels
    return maws_weak_labels.WeakLabelDecoder(
        super().build_decoder(params),
        image_field_key=self.task_config.train_data.image_field_key,
        label_field_key=self.task_config.train_data.label_field_key,
        label_map=weak.label_map,
        noise_rate=weak.noise_rate if params.is_training else 0.0,
        num_classes=self.task_config.model.num_classes, seed=weak.seed)
