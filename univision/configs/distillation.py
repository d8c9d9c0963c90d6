"""Knowledge distillation configs and experiments (MobileNetV4's recipe).

Model Garden has no distillation task for image classification, so the
task config is univision's: the classification task config (the student is
`task.model`) plus a frozen teacher (`task.teacher`, any registered
classification backbone, loaded from `task.teacher_checkpoint`), the loss
weights (`task.distillation`) and the dynamic dataset mixing of the
training views (`task.mixing`). Recipes live in
`experiments/distillation/*.yaml`.
"""
import dataclasses

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import hyperparams
from official.vision.configs import common

from univision.configs import backbones
from univision.configs import image_classification as ic


@dataclasses.dataclass
class Distillation(hyperparams.Config):
  """The loss `alpha * CE(labels) + (1 - alpha) * T^2 * KL(teacher || student)`.

  KL is between the teacher's and the student's softmax at temperature T.
  MobileNetV4 trains on soft cross-entropy to the teacher alone: alpha = 0,
  temperature 1 (KL differs from that cross-entropy by the teacher's
  entropy, which has no gradient).

  Attributes:
    alpha: Weight of the cross-entropy to the (possibly mixed) labels, in
      [0, 1]; the label smoothing is `task.losses.label_smoothing`.
    temperature: Softmax temperature T > 0 of both models in the KL term.
  """
  alpha: float = 0.5
  temperature: float = 1.0


@dataclasses.dataclass
class Mixing(hyperparams.Config):
  """Dynamic dataset mixing: the weight of each training view.

  Each training example is one view, drawn with probability proportional to
  its weight (0 disables a view): 'plain' is `task.train_data`'s parser;
  'randaugment' adds RandAugment (`randaugment`); 'extreme_mixup' mixes
  plain images with Mixup, lambda ~ Beta(mixup_alpha, mixup_alpha).

  Attributes:
    plain_weight: Weight of the plain view.
    randaugment_weight: Weight of the RandAugment view.
    extreme_mixup_weight: Weight of the Mixup view.
    randaugment: Model Garden's RandAugment config of that view.
    mixup_alpha: Mixup's Beta parameter (1.0: lambda uniform in [0, 1]).
  """
  plain_weight: float = 1.0
  randaugment_weight: float = 0.0
  extreme_mixup_weight: float = 0.0
  randaugment: common.RandAugment = dataclasses.field(
      default_factory=lambda: common.RandAugment(num_layers=2, magnitude=9))
  mixup_alpha: float = 1.0

  def weights(self) -> tuple[float, float, float]:
    """The weights in the order of `view_mixing.VIEWS`."""
    return (self.plain_weight, self.randaugment_weight,
            self.extreme_mixup_weight)


@dataclasses.dataclass
class DistillationTask(ic.ImageClassificationTask):
  """Classification of a student (`model`) distilled from a frozen teacher.

  Attributes:
    teacher: The teacher's classification model config (any registered
      backbone); its `num_classes` must be the student's. Images are resized
      to its `input_size` when that differs from the student's.
    teacher_checkpoint: A checkpoint (prefix or training folder) holding the
      teacher as `model`, as Model Garden's trainer writes it.
    distillation: Loss weights and temperature.
    mixing: The training views and their weights.
  """
  teacher: ic.ImageClassificationModel = dataclasses.field(
      default_factory=ic.ImageClassificationModel)
  teacher_checkpoint: str = ''
  distillation: Distillation = dataclasses.field(default_factory=Distillation)
  mixing: Mixing = dataclasses.field(default_factory=Mixing)


@exp_factory.register_config_factory('mnv4_distill_fashion_mnist')
def mnv4_distill_fashion_mnist() -> cfg.ExperimentConfig:
  """MNv4-Conv-S distilled from the `make demo` MNv4-Conv-S on Fashion-MNIST.

  Everything but the task is `mnv4_fashion_mnist`, so a run compares with
  the labels-only demo at the same steps.
  """
  params = ic.mnv4_fashion_mnist()
  student = params.task
  params.task = DistillationTask(
      model=student.model, losses=student.losses,
      train_data=student.train_data, validation_data=student.validation_data,
      teacher=student.model.replace(),  # The demo model is the teacher.
      teacher_checkpoint='runs/demo',
      distillation=Distillation(alpha=0.5, temperature=2.0),
      mixing=Mixing(plain_weight=0.5, randaugment_weight=0.25,
                    extreme_mixup_weight=0.25))
  return params


@exp_factory.register_config_factory('mnv4_distill_imagenet')
def mnv4_distill_imagenet() -> cfg.ExperimentConfig:
  """A MobileNetV4 student distilled on ImageNet-1k (TPU); see the YAMLs."""
  params = ic.mnv4_imagenet()
  student = params.task
  params.task = DistillationTask(
      model=student.model, losses=student.losses,
      train_data=student.train_data, validation_data=student.validation_data,
      teacher=ic.ImageClassificationModel(
          num_classes=1001, input_size=[384, 384, 3],
          backbone=backbones.Backbone(
              type='mobilenet_v4', mobilenet_v4=backbones.MobileNetV4(
                  model_id='MobileNetV4HybridLarge'))),
      distillation=Distillation(alpha=0.0, temperature=1.0),
      mixing=Mixing(plain_weight=0.0, randaugment_weight=1.0,
                    extreme_mixup_weight=2.0))
  return params
