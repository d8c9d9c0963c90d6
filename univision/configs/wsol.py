"""Weakly supervised localization (WSOL) configs and experiments.

A classifier trained on image labels at one level of a label hierarchy
(`task.label_level`; Cole et al., ECCV 2022) and evaluated by localizing
with class activation maps (`univision.modeling.wsol_model`): MaxBoxAccV2,
GT-known / Top-1 Loc and PxAP (`univision.evaluation.wsol_metrics`). The
WSOL method is `task.method`: 'cam' (plain CAM), 'has' (Hide-and-Seek
input patches, `task.hide_and_seek`), 'adl' (attention-based dropout in
the head, `task.adl`) or 'cutmix' (a box of a partner image pasted in, the
labels mixed by its pixel share, `task.cutmix`).
"""
import dataclasses
import os

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import hyperparams
from official.vision.configs import common
from official.vision.configs import backbones as mg_backbones

from univision.configs import backbones
from univision.configs import experiment_parts as parts
from univision.configs import image_classification as ic_cfg

METHODS = ('cam', 'has', 'adl', 'cutmix')


@dataclasses.dataclass
class WSOLModel(hyperparams.Config):
  """The classifier: backbone, CAM head, classes at the label level.

  Attributes:
    num_classes: Classes at `task.label_level` (checked against the
      hierarchy when the model is built); 0: the hierarchy's count.
    feature_level: The backbone endpoint the CAM head reads.
    feature_dim: Channels of the head's 1x1 conv (0: none).
  """
  num_classes: int = 4
  input_size: list[int] = dataclasses.field(default_factory=lambda: [128, 128, 3])
  backbone: backbones.Backbone = dataclasses.field(
      default_factory=lambda: backbones.Backbone(
          type='mobilenet_v4',
          mobilenet_v4=backbones.MobileNetV4(include_head=False)))
  norm_activation: common.NormActivation = dataclasses.field(
      default_factory=common.NormActivation)
  feature_level: str = '4'
  feature_dim: int = 256


@dataclasses.dataclass
class HideAndSeek(hyperparams.Config):
  """Hide-and-Seek: each grid cell of the input hidden with a probability."""
  grid_size: int = 16
  hide_probability: float = 0.5


@dataclasses.dataclass
class CutMix(hyperparams.Config):
  """CutMix: lam ~ Beta(beta, beta); a batch is mixed with `probability`."""
  beta: float = 1.0
  probability: float = 1.0


@dataclasses.dataclass
class ADL(hyperparams.Config):
  """Attention-based dropout: drop-mask probability and attention threshold."""
  drop_rate: float = 0.75
  threshold: float = 0.9


@dataclasses.dataclass
class DataConfig(cfg.DataConfig):
  """WSOL TFRecords (`univision.data.wsol_records`)."""
  input_path: str = ''
  global_batch_size: int = 32
  is_training: bool = True
  shuffle_buffer_size: int = 1000
  aug_rand_hflip: bool = True
  max_boxes: int = 8
  dtype: str = 'float32'
  file_type: str = 'tfrecord'


@dataclasses.dataclass
class Evaluation(hyperparams.Config):
  """Localization metrics: threshold grid, IoU thresholds, fixed threshold.

  Attributes:
    num_thresholds: CAM thresholds 0, 1/n, ..., (n-1)/n of the sweep.
    iou_thresholds: IoU thresholds (percent) averaged into MaxBoxAccV2.
    gt_known_threshold: CAM threshold of GT-known and Top-1 Loc; negative:
      the threshold that maximizes BoxAcc at IoU 50 on the evaluated set.
    protocol: 'univision' (`evaluation.wsol_metrics`' documented
      conventions) or 'wsolevaluation' (the reference evaluator's choices,
      `evaluation.wsolevaluation_protocol`: bicubic CAM resize, uint8 maps,
      boxes to x + w, thresholds np.arange(0, 1, 1 / num_thresholds)), for
      numbers comparable with published tables.
  """
  num_thresholds: int = 100
  iou_thresholds: list[int] = dataclasses.field(
      default_factory=lambda: [30, 50, 70])
  gt_known_threshold: float = -1.0
  protocol: str = 'univision'


@dataclasses.dataclass
class WSOLTask(cfg.TaskConfig):
  """Train at `label_level`, localize the finest boxes.

  Attributes:
    hierarchy_path: The dataset's `hierarchy.json`; empty: the one next to
      the training TFRecords.
    label_level: A level of the hierarchy (e.g. 'fine', 'coarse';
      iNatLoc500: 'species' ... 'phylum').
    method: One of `METHODS`.
    label_smoothing: Of the cross-entropy loss.
    l2_weight_decay: L2 on kernels (0 with AdamW's decoupled decay).
  """
  model: WSOLModel = dataclasses.field(default_factory=WSOLModel)
  train_data: DataConfig = dataclasses.field(default_factory=DataConfig)
  validation_data: DataConfig = dataclasses.field(
      default_factory=lambda: DataConfig(is_training=False,
                                         drop_remainder=False))
  hierarchy_path: str = ''
  label_level: str = 'fine'
  method: str = 'cam'
  hide_and_seek: HideAndSeek = dataclasses.field(default_factory=HideAndSeek)
  adl: ADL = dataclasses.field(default_factory=ADL)
  cutmix: CutMix = dataclasses.field(default_factory=CutMix)
  label_smoothing: float = 0.0
  l2_weight_decay: float = 0.0
  evaluation: Evaluation = dataclasses.field(default_factory=Evaluation)
  init_checkpoint: str = ''
  init_checkpoint_modules: str = 'backbone'


def hierarchy_path(task: WSOLTask) -> str:
  """`task.hierarchy_path`, or `hierarchy.json` beside the training data."""
  if task.hierarchy_path:
    return task.hierarchy_path
  first = task.train_data.input_path.split(',')[0]
  return os.path.join(os.path.dirname(first), 'hierarchy.json')


@exp_factory.register_config_factory('mnv4_wsol_composites')
def mnv4_wsol_composites() -> cfg.ExperimentConfig:
  """MNv4-Conv-S CAM classifier on `data/wsol_composites`, on a CPU.

  128x128 inputs, CAM at stride 16 (8x8), 1,500 steps of batch 32 from the
  Fashion-MNIST classifier's backbone (`make demo`).
  """
  steps, folder = 1500, 'data/wsol_composites'
  return cfg.ExperimentConfig(
      runtime=parts.cpu_runtime(),
      task=WSOLTask(
          train_data=DataConfig(input_path=f'{folder}/train-*'),
          validation_data=DataConfig(input_path=f'{folder}/test-*',
                                     is_training=False, drop_remainder=False,
                                     global_batch_size=50),
          label_level='fine', model=WSOLModel(num_classes=10),
          init_checkpoint='runs/demo'),
      trainer=cfg.TrainerConfig(
          train_steps=steps, validation_steps=-1, validation_interval=steps,
          steps_per_loop=100, summary_interval=100, checkpoint_interval=500,
          optimizer_config=ic_cfg.adamw_cosine(
              0.001, 0.01, steps, 100)),
      restrictions=parts.restrictions())


@exp_factory.register_config_factory('resnet50_wsol_composites')
def resnet50_wsol_composites() -> cfg.ExperimentConfig:
  """`mnv4_wsol_composites` with Model Garden's ResNet-50 as the reference.

  ResNet-50's level 4 (stride 16, 1024 channels) feeds the CAM head. No
  backbone checkpoint is set: point `task.init_checkpoint` at an ImageNet
  ResNet-50 (Model Garden's) to start from one.
  """
  config = mnv4_wsol_composites()
  config.task.model.backbone = backbones.Backbone(
      type='resnet', resnet=mg_backbones.ResNet(model_id=50))
  config.task.init_checkpoint = ''
  return config


INATLOC_TRAIN_EXAMPLES = 138_000  # iNatLoc500 train-weaksup (approximate).
INATLOC_INPUT_PATH_BASE = 'gs://your-bucket/inatloc500'


@exp_factory.register_config_factory('mnv4_wsol_inatloc500')
def mnv4_wsol_inatloc500() -> cfg.ExperimentConfig:
  """MNv4-Conv-M CAM classifier on iNatLoc500, on a TPU pod slice.

  Data: TFRecords written by `python -m univision.data.inatloc` (training
  on `train-*` without boxes, localization on `val-*`, the paper's
  train-fullsup split used for choices; point it at `test-*` for the final
  numbers). `label_level` is one of species, genus, family, order, class,
  phylum. The schedule is ASSUMED, not the paper's (not available to us):
  224x224, batch 256, 30 epochs of AdamW with cosine decay from an ImageNet
  checkpoint (set `task.init_checkpoint`, e.g. the timm conversion).
  """
  batch, epochs = 256, 30
  steps = epochs * INATLOC_TRAIN_EXAMPLES // batch
  path = INATLOC_INPUT_PATH_BASE
  return cfg.ExperimentConfig(
      runtime=parts.tpu_runtime(),
      task=WSOLTask(
          model=WSOLModel(
              num_classes=0, input_size=[224, 224, 3], feature_dim=512,
              backbone=backbones.Backbone(
                  type='mobilenet_v4',
                  mobilenet_v4=backbones.MobileNetV4(
                      model_id='MobileNetV4ConvMedium', include_head=False)),
              norm_activation=common.NormActivation(use_sync_bn=True)),
          train_data=DataConfig(input_path=f'{path}/train-*',
                                global_batch_size=batch, dtype='bfloat16',
                                shuffle_buffer_size=10000),
          validation_data=DataConfig(input_path=f'{path}/val-*',
                                     is_training=False, drop_remainder=False,
                                     global_batch_size=batch,
                                     dtype='bfloat16'),
          hierarchy_path=f'{path}/hierarchy.json', label_level='species',
          evaluation=Evaluation(num_thresholds=1000)),
      trainer=cfg.TrainerConfig(
          train_steps=steps, validation_steps=-1, validation_interval=steps,
          steps_per_loop=500, summary_interval=500, checkpoint_interval=1000,
          optimizer_config=ic_cfg.adamw_cosine(1e-3, 0.05, steps, 1000)),
      restrictions=parts.restrictions())


@exp_factory.register_config_factory('mnv4_wsol_parts')
def mnv4_wsol_parts() -> cfg.ExperimentConfig:
  """MNv4-Conv-S CAM classifier on `data/wsol_parts` (issue #21), on a CPU.

  Finer maps and a start that knows none of the labels: the backbone stops
  downsampling at stride 8 (`output_stride`; CAM 16x16 at 128 px, read from
  level 3, the last block's output) and starts from random weights (the
  `make demo` backbone was trained on the 10 shapes, one of the levels).
  `label_level` is marked (30 classes), shape (10) or family (4);
  `num_classes` 0 takes the level's count. Validation reads `val-*`, the
  split for choosing hyper-parameters and the CAM threshold; test is for
  the final numbers only. 3,000 steps of batch 32 is a starting point, not
  a measured convergence.
  """
  config = mnv4_wsol_composites()
  steps, folder = 3000, 'data/wsol_parts'
  config.task.model.num_classes = 0
  config.task.model.feature_level = '3'
  config.task.model.backbone.mobilenet_v4.output_stride = 8
  config.task.init_checkpoint = ''
  config.task.label_level = 'marked'
  config.task.train_data.input_path = f'{folder}/train-*'
  config.task.validation_data.input_path = f'{folder}/val-*'
  config.trainer.train_steps = config.trainer.validation_interval = steps
  config.trainer.optimizer_config = ic_cfg.adamw_cosine(0.002, 0.01, steps,
                                                        150)
  return config
