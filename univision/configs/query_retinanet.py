"""Query-modulated detection configs and experiments (arXiv 2106.10258).

The task is Model Garden's RetinaNet task config plus `query`; the model is
any univision RetinaNet model config (MobileNetV4 backbone, FPN or SSDLite
features), to which `univision.modeling.detectors.query_retinanet` adds the
query's modulations and embeddings.
"""
import dataclasses

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import hyperparams

from univision.configs import retinanet as retinanet_cfg


@dataclasses.dataclass
class Query(hyperparams.Config):
  """Query embeddings and modulation, synthesis and the joint loss.

  Attributes:
    embedding_dim: Size of the learned query table.
    vectors_path: A `.npy` of fixed query vectors, one row per query id
      (`core.query_vocabulary`; e.g. text embeddings of the class names),
      instead of the learned table.
    trainable_vectors: Whether the file's vectors are fine-tuned.
    absent_probability: Chance that a training example queries a class it
      does not contain.
    standard_weight: Weight of the standard pass's loss.
    query_weight: Weight of the query pass's loss; 0 trains the standard
      detector alone (no query pass runs).
    modulation: 'film' (per-channel scale and shift from the query, the
      default), 'gate' (per-channel scale in (0, 2)) or 'concat' (residual
      1x1 conv over features and the tiled query).
    backbone_levels: Levels of the MobileNetV4 blocks whose outputs the
      query modulates (default the last two stages); [] for none.
    backbone_placement: Where in those blocks: 'output' (the block's
      output) or 'pre_activation' (the block's first normalised features
      before their activation: an inverted bottleneck's expansion, a conv
      block's conv; as conditional batch norm, so that no batch norm
      downstream can normalise the modulation away).
    decoder: Whether the query modulates every decoder level too.
    query_batch_norm: The statistics the query pass's batch norms use in
      training: 'moving' (the default: the moving statistics, which only
      the standard pass updates, so each pass is normalised alike in
      training and inference; the query pass's layers run in inference
      mode, stochastic depth off too) or 'batch' (its batch's; the moving
      statistics then average the standard and the query pass's features,
      and both passes are evaluated with that mixture, which cost the
      joint standard detector several points of mAP in
      docs/query_detection.md's "Fourth check"). 'moving' needs the
      standard pass (`standard_weight` > 0) unless only the modulation
      trains.
    query_gradient: What the class queries' loss updates: 'all' (the
      default: every trained weight, as in joint training) or 'query_only'
      (the modulations and the query embedding; the shared detector then
      learns from the standard pass alone, the query pass can only steer
      it).
    referring_rules: Referring-style queries besides class queries, by
      rule ('largest', 'leftmost': `core.query_vocabulary`); [] for none.
    referring_probability: Chance that a training query for a present
      class refers to one of its boxes by a rule (drawn uniformly).
    referring_gradient: What the referring queries' loss updates:
      'query_only' (the default: the modulations and the query embedding)
      or 'all' (every trained weight). Their targets (one box of class c positive, c's
      other boxes negative) contradict the standard pass's for the shared
      head's column c, so with 'all' they also train the shared detector
      to score objects of c low, which costs the standard detector
      (docs/query_detection.md); with 'query_only' only the query's own
      weights must tell the selected box apart.
    train_classes: The classes training queries are drawn from; [] for
      all. One class with `standard_weight: 0` trains a one-class detector
      of it (the query study's capacity check).
    train_only_modulation: Update only the modulations and the query
      embedding, every other weight frozen (how far the modulation alone
      can specialise a trained detector; with `query_batch_norm: batch`
      the query pass's batch norms still run in training mode, so their
      moving statistics move); needs a query loss.
  """
  embedding_dim: int = 64
  vectors_path: str = ''
  trainable_vectors: bool = False
  absent_probability: float = 0.3
  standard_weight: float = 1.0
  query_weight: float = 1.0
  modulation: str = 'film'
  backbone_levels: list[int] = dataclasses.field(
      default_factory=lambda: [4, 5])
  backbone_placement: str = 'output'
  decoder: bool = True
  query_batch_norm: str = 'moving'
  query_gradient: str = 'all'
  referring_rules: list[str] = dataclasses.field(default_factory=list)
  referring_probability: float = 0.0
  referring_gradient: str = 'query_only'
  train_classes: list[int] = dataclasses.field(default_factory=list)
  train_only_modulation: bool = False


@dataclasses.dataclass
class QueryRetinaNetTask(retinanet_cfg.RetinaNetTask):
  """RetinaNet task trained jointly with and without a query."""
  query: Query = dataclasses.field(default_factory=Query)


@exp_factory.register_config_factory('mnv4_query_ssdlite_composites')
def mnv4_query_ssdlite_composites() -> cfg.ExperimentConfig:
  """`mnv4_ssdlite_composites`, query-modulated, on one composite task."""
  config = retinanet_cfg.mnv4_ssdlite_composites()
  config.task = QueryRetinaNetTask(**config.task.as_dict())
  return config


@exp_factory.register_config_factory('mnv4_query_ssdlite_crowded')
def mnv4_query_ssdlite_crowded() -> cfg.ExperimentConfig:
  """Query-modulated detection on `crowded_clothing` (issue #20's task).

  11 classes (Fashion-MNIST's 10 and the horse; `num_classes` 12 with the
  background), 4 to 8 objects per image, and a capacity-bound detector:
  MNv4-Conv-S with 64-channel SSDLite features and predictors, 128 px.
  A third of the training queries for present classes are referring ones
  ("the largest c", "the leftmost c").

  Every object of this task is matched on level 3 (stride 8 at 128 px),
  and SSDLite's level 3 reads backbone stage 3 alone, so the query
  modulates inside the blocks of levels 3-5 (`pre_activation`), not the
  outputs of the last two stages, which no detection here depends on. The
  query pass normalises with the standard pass's moving statistics
  (`query_batch_norm: moving`) and the referring queries train the
  query's own weights only (`referring_gradient: query_only`), the
  `Query` defaults: each otherwise cost the joint standard detector
  several points of mAP (docs/query_detection.md, "Fourth check").
  """
  config = mnv4_query_ssdlite_composites()
  folder = 'data/composites/crowded_clothing'
  config.task.model.num_classes = 12
  config.task.model.decoder.ssdlite.num_filters = 64
  config.task.model.head.num_filters = 64
  config.task.query.referring_rules = ['largest', 'leftmost']
  config.task.query.referring_probability = 1 / 3
  config.task.query.backbone_levels = [3, 4, 5]
  config.task.query.backbone_placement = 'pre_activation'
  config.task.train_data.input_path = f'{folder}/train-*'
  config.task.validation_data.input_path = f'{folder}/val-*'
  return config
