"""MAWS configs: ViT classification and weakly supervised pretraining.

Singh et al., "The effectiveness of MAE pre-pretraining for billion-scale
pretraining" (MAWS, ICCV 2023): MAE pre-pretraining -> weakly supervised
pretraining (WSP) -> fine-tuning, each stage initialised from the previous
one's checkpoint. The stages here are

1. `vit_mae_fashion_mnist` (`univision.configs.mae`),
2. `vit_weak_fashion_mnist`: a ViT classifier on weak labels
   (`WeakLabelClassificationTask`, see
   `univision.dataloaders.maws_weak_labels`),
3. `vit_fashion_mnist`: the ViT classifier on the clean labels,

chained by `task.init_checkpoint` + `init_checkpoint_modules: backbone`
(YAMLs in `experiments/maws/`; `univision.studies.maws` runs them). The
classifier's backbone is `vit_mae`, the MAE encoder without masking.

Fine-tuning recipe: MAE's `FINETUNE.md` / `main_finetune.py` use AdamW with
torch's default betas (0.9, 0.999), weight decay 0.05 (not on 1-D weights),
warm-up then cosine, label smoothing 0.1 (plus layer decay, mixup / cutmix
and drop path, which are not used at this scale). Learning rates and step
counts are ours, for a few hundred CPU steps.
"""
import dataclasses
from typing import List

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import hyperparams
from official.modeling import optimization
from official.vision.configs import image_classification as mg_ic

from univision.configs import backbones
from univision.configs import experiment_parts as parts
from univision.configs import image_classification as ic_cfg
from univision.configs import mae as mae_cfg


@dataclasses.dataclass
class WeakLabels(hyperparams.Config):
  """How labels are weakened (`univision.dataloaders.maws_weak_labels`).

  Attributes:
    label_map: Group id of each class id of the records; empty keeps them.
      Applied to training and validation labels.
    noise_rate: Fraction of training labels changed to another (mapped)
      class, fixed per image; validation labels are not flipped.
    seed: Chooses which images are flipped, and to what.
  """
  label_map: List[int] = dataclasses.field(default_factory=list)
  noise_rate: float = 0.0
  seed: int = 0


@dataclasses.dataclass
class WeakLabelClassificationTask(ic_cfg.ImageClassificationTask):
  """Image classification on weakened labels (MAWS's WSP stand-in)."""
  weak_labels: WeakLabels = dataclasses.field(default_factory=WeakLabels)


def vit_finetune_optimizer(learning_rate: float, steps: int,
                           warmup_steps: int
                           ) -> optimization.OptimizationConfig:
  """AdamW (0.9, 0.999), wd 0.05 but not on 1-D weights, warm-up + cosine."""
  return parts.adamw_warmup_cosine(learning_rate, steps, warmup_steps,
                                   **mae_cfg.mae_adamw(beta_2=0.999))


def _vit_fashion_mnist_task(num_classes: int) -> dict:
  """Task fields shared by the two classification stages (32x32, tiny)."""
  return dict(
      model=ic_cfg.ImageClassificationModel(
          num_classes=num_classes, input_size=[32, 32, 3], dropout_rate=0.0,
          backbone=backbones.Backbone(
              type='vit_mae', vit_mae=backbones.ViTMAE(size='tiny'))),
      losses=mg_ic.Losses(label_smoothing=0.1),
      init_checkpoint_modules='backbone',
      **parts.fashion_mnist_data())


def finetune_cpu_experiment(task: cfg.TaskConfig, steps: int,
                            learning_rate: float) -> cfg.ExperimentConfig:
  """`task` on a CPU with `vit_finetune_optimizer` (10% warm-up).

  Validation (50 batches) and the checkpoint come at the end of training.
  """
  return cfg.ExperimentConfig(
      runtime=parts.cpu_runtime(),
      task=task,
      trainer=cfg.TrainerConfig(
          train_steps=steps, validation_steps=50, validation_interval=steps,
          steps_per_loop=50, summary_interval=50, checkpoint_interval=steps,
          optimizer_config=vit_finetune_optimizer(learning_rate, steps,
                                                  steps // 10)),
      restrictions=parts.restrictions())


@exp_factory.register_config_factory('vit_fashion_mnist')
def vit_fashion_mnist() -> cfg.ExperimentConfig:
  """A tiny ViT (`vit_mae` backbone) on Fashion-MNIST's 10 classes, CPU."""
  return finetune_cpu_experiment(
      ic_cfg.ImageClassificationTask(**_vit_fashion_mnist_task(10)),
      steps=300, learning_rate=1e-3)


@exp_factory.register_config_factory('vit_weak_fashion_mnist')
def vit_weak_fashion_mnist() -> cfg.ExperimentConfig:
  """The tiny ViT on weak Fashion-MNIST labels (no weakening by default).

  The MAWS YAML sets the weakening (groups and noise).
  """
  return finetune_cpu_experiment(
      WeakLabelClassificationTask(**_vit_fashion_mnist_task(10)),
      steps=300, learning_rate=1e-3)
