"""RetinaNet detection configs and experiments with MobileNetV4 backbones.

The task, data, anchor, head and loss configs are Model Garden's; the model
config changes only so that `backbone.type` can be `mobilenet_v4` and
`decoder.type` can be `ssdlite` (`univision.modeling.decoders.ssdlite`), and
Model Garden's `RetinaNetTask` is registered for it. Composite tasks are
written by `python -m univision.data.detection_composites`.

Experiments: `mnv4_retinanet_composites` / `mnv4_ssdlite_composites` (CPU,
one offline task), `mnv4_retinanet_composites_patch` (fixed model patches),
`mnv4_retinanet_composites_spot` (a learned SpotPatch), and
`mnv4_retinanet_coco` / `mnv4_ssdlite_coco` (TPU, COCO).
"""
import dataclasses
import os

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.core import task_factory
from official.modeling import hyperparams
from official.modeling import optimization
from official.vision.configs import common
from official.vision.configs import decoders
from official.vision.configs import retinanet as mg_retinanet
from official.vision.tasks import retinanet as mg_retinanet_task

from univision.configs import backbones
from univision.configs import decoders as uv_decoders
from univision.configs import experiment_parts as parts


@dataclasses.dataclass
class RetinaNet(mg_retinanet.RetinaNet):
  """Model Garden's RetinaNet model config with univision backbones."""
  backbone: backbones.Backbone = dataclasses.field(
      default_factory=lambda: backbones.Backbone(type='mobilenet_v4'))
  decoder: uv_decoders.Decoder = dataclasses.field(
      default_factory=lambda: uv_decoders.Decoder(type='fpn',
                                                   fpn=decoders.FPN()))


@dataclasses.dataclass
class RetinaNetTask(mg_retinanet.RetinaNetTask):
  """Model Garden's RetinaNet task config with univision models."""
  model: RetinaNet = dataclasses.field(default_factory=RetinaNet)


task_factory.register_task_cls(RetinaNetTask)(mg_retinanet_task.RetinaNetTask)


@dataclasses.dataclass
class PatchedRetinaNetTask(RetinaNetTask):
  """RetinaNet training only a model patch of a shared base.

  Attributes:
    patch: Patch kinds joined by '+' (`univision.modeling.patches.KINDS`):
      only these variables train; everything else stays as loaded from
      `init_checkpoint` (the shared base).
    bn_statistics: For a patch with `bn`: 'frozen' trains scale and shift
      with the base's moving statistics (batch norm in inference mode, as
      in training and evaluation alike); 'batch' normalizes by batch
      statistics while training and updates the moving ones, which the
      patch file carries. Measured 2026-12-05 on footwear_on_textures from
      the patch study's base (400 steps, bn+predictor, learning rate
      0.01): 'batch' val AP 0.427 (evaluation loss 0.359), 'frozen' 0.426.
      An earlier 'batch' run (2026-11-24, older base and head) evaluated at
      a loss of 10.9; it does not reproduce (docs/detection.md).
  """
  patch: str = 'bn+head'
  bn_statistics: str = 'frozen'


@dataclasses.dataclass
class SpotGates(hyperparams.Config):
  """SpotPatch's learned gates (`univision.modeling.spot_patch`).

  Attributes:
    size_weight: lambda of the size penalty lambda * sum_l P(g_l = 1) *
      |W_l| / |W| added to the detection loss.
    initial_logit: Every gate's logit at the start (0: P(copy) = 0.5).
    temperature_start: The relaxation temperature at step 0.
    temperature_end: The temperature after `temperature_steps` (then held).
    temperature_steps: Steps of the exponential annealing.
    penalty_warmup_steps: The size penalty's weight grows linearly from 0
      to `size_weight` over these steps (0: full weight from the start). A
      gate's task gradient is <dL/dW_l, W'_l - W_l>, zero while the copy
      still equals the shared kernel, and a copy learns only on steps its
      gate is sampled open: a full penalty from step 0 can close a gate
      before its copy has shown what it is worth.
    granularity: 'layer' (a gate per conv or dense layer) or 'block' (a
      gate per backbone block; FPN and head layers alone,
      `univision.modeling.spot_patch.blocks`).
    learning_rate: > 0: the gate logits take plain gradient steps of this
      rate, apart from the experiment's optimizer; 0: that optimizer
      updates them too. An Adam-type optimizer moves every logit by about
      its learning rate whatever the gradient's size, so the size
      penalty's weighting by |W_l| (and lambda itself, while the task
      gradient is small) would barely matter; gradient steps keep it.
  """
  size_weight: float = 0.1
  initial_logit: float = 0.0
  temperature_start: float = 1.0
  temperature_end: float = 0.05
  temperature_steps: int = 1000
  penalty_warmup_steps: int = 0
  granularity: str = 'layer'
  learning_rate: float = 0.0


@dataclasses.dataclass
class SpotPatchedRetinaNetTask(PatchedRetinaNetTask):
  """RetinaNet training a SpotPatch: learned gates choose the patch's layers.

  `patch` names what is always in the patch (batch norm and the
  predictor); every other conv and dense layer gets a gate and a task copy
  (`univision.modeling.spot_patch`).

  Attributes:
    gates: The gates' penalty, start and temperature schedule.
  """
  patch: str = 'bn+predictor'
  gates: SpotGates = dataclasses.field(default_factory=SpotGates)


@exp_factory.register_config_factory('mnv4_retinanet_composites')
def mnv4_retinanet_composites() -> cfg.ExperimentConfig:
  """MNv4-Conv-S RetinaNet + FPN (levels 3-5) on one composite task, on CPU.

  A mobile RetinaNet: FPN and head at 128 channels with separable 3x3
  convs (Model Garden's default 256-channel dense head costs some 25x the
  backbone's multiply-adds at 128x128).

  128x128 images; labels 1..K of the task (K <= 4, `num_classes` counts the
  background). Point `input_path`s at another task's folder to switch.
  """
  steps = 3000
  folder = 'data/composites/tops_on_photos'
  return cfg.ExperimentConfig(
      runtime=parts.cpu_runtime(),
      task=RetinaNetTask(
          model=RetinaNet(
              num_classes=5, input_size=[128, 128, 3], min_level=3,
              max_level=5,
              backbone=backbones.Backbone(
                  type='mobilenet_v4',
                  mobilenet_v4=backbones.MobileNetV4(include_head=False)),
              decoder=uv_decoders.Decoder(
                  type='fpn', fpn=decoders.FPN(num_filters=128,
                                               use_separable_conv=True)),
              head=mg_retinanet.RetinaNetHead(num_filters=128,
                                              use_separable_conv=True)),
          losses=mg_retinanet.Losses(l2_weight_decay=0.0),
          train_data=mg_retinanet.DataConfig(
              input_path=f'{folder}/train-*', is_training=True,
              global_batch_size=16,
              parser=mg_retinanet.Parser(aug_rand_hflip=True,
                                         aug_scale_min=0.8,
                                         aug_scale_max=1.2)),
          validation_data=mg_retinanet.DataConfig(
              input_path=f'{folder}/val-*', is_training=False,
              global_batch_size=8, drop_remainder=False),
          annotation_file=None),
      trainer=cfg.TrainerConfig(
          train_steps=steps, validation_steps=25, validation_interval=steps,
          steps_per_loop=100, summary_interval=100, checkpoint_interval=1000,
          optimizer_config=parts.adamw_warmup_cosine(
              0.002, steps, 200, weight_decay_rate=0.01)),
      restrictions=parts.restrictions())


def _as_patch(config: cfg.ExperimentConfig) -> cfg.ExperimentConfig:
  """`config` training only a patch of a shared base (`task.patch`)."""
  config.task = PatchedRetinaNetTask(**config.task.as_dict())
  config.task.init_checkpoint_modules = 'all'
  return config


# AdamW's weight decay would pull a kernel copy toward 0 (not toward the
# shared kernel it starts from) and a gate's logit toward P = 0.5: neither
# decays. Patterns are searched in variable names (`spot_patch.SpotPatch`).
SPOT_NO_WEIGHT_DECAY = ('copy_[0-9]+_', r'gate_[0-9]+/logit')


def _as_spot(config: cfg.ExperimentConfig) -> cfg.ExperimentConfig:
  """`config` training a learned SpotPatch of a shared base."""
  config = _as_patch(config)
  config.task = SpotPatchedRetinaNetTask(
      **{**config.task.as_dict(), 'patch': 'bn+predictor'})
  config.task.gates.temperature_steps = config.trainer.train_steps
  # Plain gradient steps for the logits (see SpotGates.learning_rate); the
  # rate from a pilot on footwear_on_textures (2026-12-05, lambda 0.2, 400
  # steps): val AP 0.488 at 7.3% of the parameters, against 0.506 at 10.6%
  # with AdamW updating the logits.
  config.task.gates.learning_rate = 10.0
  adamw = config.trainer.optimizer_config.optimizer.adamw
  adamw.exclude_from_weight_decay = [
      *(adamw.exclude_from_weight_decay or []), *SPOT_NO_WEIGHT_DECAY]
  return config


@exp_factory.register_config_factory('mnv4_retinanet_composites_patch')
def mnv4_retinanet_composites_patch() -> cfg.ExperimentConfig:
  """`mnv4_retinanet_composites` training only a patch of a shared base.

  Set `task.init_checkpoint` to the shared base detector's checkpoint
  (`init_checkpoint_modules: all`) and `task.patch` to the patch kinds.
  """
  return _as_patch(mnv4_retinanet_composites())


@exp_factory.register_config_factory('mnv4_retinanet_composites_spot')
def mnv4_retinanet_composites_spot() -> cfg.ExperimentConfig:
  """`mnv4_retinanet_composites_patch` with a learned SpotPatch.

  Set `task.init_checkpoint` to the shared base detector's checkpoint; the
  gates' schedule follows the run's steps.
  """
  return _as_spot(mnv4_retinanet_composites())


@exp_factory.register_config_factory('mnv4_ssdlite_composites')
def mnv4_ssdlite_composites() -> cfg.ExperimentConfig:
  """`mnv4_retinanet_composites` with SSDLite-style features and predictors.

  Decoder `ssdlite` (128 channels; level 6 an extra stride-2 layer), head
  without conv towers: 3x3 separable class and box predictors.
  """
  config = mnv4_retinanet_composites()
  model = config.task.model
  model.max_level = 6
  model.decoder = uv_decoders.Decoder(
      type='ssdlite', ssdlite=uv_decoders.SSDLite(num_filters=128))
  model.head = mg_retinanet.RetinaNetHead(num_convs=0, num_filters=128,
                                          use_separable_conv=True)
  return config


@exp_factory.register_config_factory('mnv4_ssdlite_composites_patch')
def mnv4_ssdlite_composites_patch() -> cfg.ExperimentConfig:
  """`mnv4_ssdlite_composites` training only a patch (`task.patch`)."""
  return _as_patch(mnv4_ssdlite_composites())


@exp_factory.register_config_factory('mnv4_ssdlite_composites_spot')
def mnv4_ssdlite_composites_spot() -> cfg.ExperimentConfig:
  """`mnv4_ssdlite_composites` with a learned SpotPatch of a shared base."""
  return _as_spot(mnv4_ssdlite_composites())


COCO_TRAIN_EXAMPLES = 118287
COCO_VAL_EXAMPLES = 5000
COCO_INPUT_PATH_BASE = 'gs://your-bucket/coco'


@exp_factory.register_config_factory('mnv4_retinanet_coco')
def mnv4_retinanet_coco() -> cfg.ExperimentConfig:
  """COCO RetinaNet on MobileNetV4 (default Conv-M), on a TPU pod slice.

  The schedule, input size, augmentation, anchors and losses are Model
  Garden's `retinanet_mobile_coco` recipe (384x384, batch 256, 600 epochs,
  SGD momentum 0.9 with lr 0.32 stepped down 10x at epochs 575 and 590,
  2000 warm-up steps from 0.0067, L2 3e-5, scale jitter 0.1-2.0, anchor
  size 3, levels 3-7, synchronized BN). MobileNetV4 has no multi-scale
  outputs of its own (Model Garden's mobile recipe uses SpineNet-Mobile and
  an identity decoder), so an FPN (256 channels, separable convs) builds
  the pyramid; the head is Model Garden's (4 separable convs of 256).
  Point `COCO_INPUT_PATH_BASE` paths at TFRecords made by Model Garden's
  `create_coco_tf_record`.
  """
  batch, eval_batch, input_size = 256, 8, 384
  steps_per_epoch = COCO_TRAIN_EXAMPLES // batch
  return cfg.ExperimentConfig(
      runtime=parts.tpu_runtime(),
      task=RetinaNetTask(
          annotation_file=os.path.join(COCO_INPUT_PATH_BASE,
                                       'instances_val2017.json'),
          model=RetinaNet(
              num_classes=91, input_size=[input_size, input_size, 3],
              min_level=3, max_level=7,
              backbone=backbones.Backbone(
                  type='mobilenet_v4',
                  mobilenet_v4=backbones.MobileNetV4(
                      model_id='MobileNetV4ConvMedium', include_head=False)),
              decoder=uv_decoders.Decoder(
                  type='fpn', fpn=decoders.FPN(num_filters=256,
                                               use_separable_conv=True)),
              head=mg_retinanet.RetinaNetHead(num_filters=256,
                                              use_separable_conv=True),
              anchor=mg_retinanet.Anchor(anchor_size=3),
              norm_activation=common.NormActivation(
                  use_sync_bn=True, activation='relu')),
          losses=mg_retinanet.Losses(l2_weight_decay=3e-5),
          train_data=mg_retinanet.DataConfig(
              input_path=os.path.join(COCO_INPUT_PATH_BASE, 'train*'),
              is_training=True, global_batch_size=batch,
              parser=mg_retinanet.Parser(aug_rand_hflip=True,
                                         aug_scale_min=0.1,
                                         aug_scale_max=2.0)),
          validation_data=mg_retinanet.DataConfig(
              input_path=os.path.join(COCO_INPUT_PATH_BASE, 'val*'),
              is_training=False, global_batch_size=eval_batch)),
      trainer=cfg.TrainerConfig(
          train_steps=600 * steps_per_epoch,
          validation_steps=COCO_VAL_EXAMPLES // eval_batch,
          validation_interval=steps_per_epoch,
          steps_per_loop=steps_per_epoch,
          summary_interval=steps_per_epoch,
          checkpoint_interval=steps_per_epoch,
          optimizer_config=optimization.OptimizationConfig({
              'optimizer': {'type': 'sgd', 'sgd': {'momentum': 0.9}},
              'learning_rate': {'type': 'stepwise', 'stepwise': {
                  'boundaries': [575 * steps_per_epoch,
                                 590 * steps_per_epoch],
                  'values': [0.32 * batch / 256, 0.032 * batch / 256,
                             0.0032 * batch / 256]}},
              'warmup': {'type': 'linear', 'linear': {
                  'warmup_steps': 2000, 'warmup_learning_rate': 0.0067}},
          })),
      restrictions=parts.restrictions())


@exp_factory.register_config_factory('mnv4_ssdlite_coco')
def mnv4_ssdlite_coco() -> cfg.ExperimentConfig:
  """`mnv4_retinanet_coco` with SSDLite-style features and predictors."""
  config = mnv4_retinanet_coco()
  model = config.task.model
  model.decoder = uv_decoders.Decoder(
      type='ssdlite', ssdlite=uv_decoders.SSDLite(num_filters=256))
  model.head = mg_retinanet.RetinaNetHead(num_convs=0, num_filters=256,
                                          use_separable_conv=True)
  return config
