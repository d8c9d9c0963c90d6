"""Joint standard + query-modulated RetinaNet training.

Model Garden's RetinaNet task does inputs, standard losses, evaluation and
COCO metrics; this task adds what it lacks: the query parser
(`dataloaders.query_retinanet_input`), the query-modulated model
(`modeling.detectors.query_retinanet`: modulation inside the backbone and
on the decoder levels, one shared multi-class head), and the joint loss

  total = standard_weight * (standard loss) + query_weight * (query loss).

Each batch runs the standard pass (no query; Model Garden's focal + Huber
losses on every box) and the query pass (query q per image, synthesized
from its boxes, absent classes at `absent_probability`, referring queries
at `referring_probability`): focal loss on the head's logit of q's class,
whose positives are q's boxes only (a referring query's: the one box its
rule selects), and Huber loss on their boxes, normalized by the query's
positives. Evaluation runs the
standard pass (the model without a query is the standard detector).
`build_inputs` restates Model Garden's parser construction for training
data because Model Garden builds its parser inline (no hook to swap it).
"""
from typing import Any

from absl import logging
import tensorflow as tf, tf_keras
from official.common import dataset_fn
from official.core import task_factory
from official.vision.dataloaders import input_reader
from official.vision.dataloaders import input_reader_factory
from official.vision.dataloaders import tf_example_decoder
from official.vision.losses import focal_loss
from official.vision.losses import loss_utils
from official.vision.tasks import retinanet as mg_retinanet_task

from univision.configs import query_retinanet as query_cfg
from univision.core import checkpoints
from univision.core import query_vocabulary
from univision.dataloaders import query_retinanet_input
from univision.modeling.detectors import query_retinanet
from univision.tasks import gradient_steps


@task_factory.register_task_cls(query_cfg.QueryRetinaNetTask)
class QueryRetinaNetTask(mg_retinanet_task.RetinaNetTask):
  """Trains the standard and the query-modulated heads together."""

  def build_model(self) -> tf_keras.Model:
    return query_retinanet.build_for_task(
        super().build_model(), self.task_config,
        query_vocabulary.QueryVocabulary.of_task(self.task_config)
        .class_table())

  def build_inputs(self, params, input_context=None):
    if not params.is_training:
      return super().build_inputs(params, input_context)
    model = self.task_config.model
    if params.decoder.type != 'simple_decoder' or params.tfds_name:
      raise ValueError('Query training reads TFRecords with the simple '
                       f'decoder; got decoder {params.decoder.type!r}, '
                       f'tfds_name {params.tfds_name!r}.')
    decoder = tf_example_decoder.TfExampleDecoder(
        regenerate_source_id=params.decoder.simple_decoder
        .regenerate_source_id)
    parser = query_retinanet_input.Parser(
        num_classes=model.num_classes,
        absent_probability=self.task_config.query.absent_probability,
        referring_rules=tuple(self.task_config.query.referring_rules),
        referring_probability=self.task_config.query.referring_probability,
        query_classes=tuple(self.task_config.query.train_classes),
        output_size=model.input_size[:2], min_level=model.min_level,
        max_level=model.max_level, num_scales=model.anchor.num_scales,
        aspect_ratios=model.anchor.aspect_ratios,
        anchor_size=model.anchor.anchor_size, dtype=params.dtype,
        match_threshold=params.parser.match_threshold,
        unmatched_threshold=params.parser.unmatched_threshold,
        box_coder_weights=model.detection_generator.box_coder_weights,
        aug_rand_hflip=params.parser.aug_rand_hflip,
        aug_scale_min=params.parser.aug_scale_min,
        aug_scale_max=params.parser.aug_scale_max,
        skip_crowd_during_training=params.parser.skip_crowd_during_training,
        max_num_instances=params.parser.max_num_instances)
    reader = input_reader_factory.input_reader_generator(
        params, dataset_fn=dataset_fn.pick_dataset_fn(params.file_type),
        decoder_fn=decoder.decode,
        combine_fn=input_reader.create_combine_fn(params),
        parser_fn=parser.parse_fn(params.is_training))
    return reader.read(input_context=input_context)

  def query_losses(self, outputs, labels, examples: tf.Tensor | None = None
                   ) -> tuple[tf.Tensor, tf.Tensor]:
    """Focal loss of the class-q logit and Huber loss of q's boxes.

    The query pass's head predicts every class, but only the queried
    class's column is read (and trained): anchors matched to a box of class
    q (for a referring query, to the box its rule selects) are its
    positives, every other anchor its negative (ignored anchors keep weight
    0 through the shared `cls_weights`).

    Args:
      outputs: The model's training outputs, with the query pass's.
      labels: The query parser's labels.
      examples: [B] weights 0/1 of the examples to count; None: all. The
        losses stay normalised by the whole batch's query positives, so
        the losses of complementary subsets add up to the whole batch's.
    """
    losses = self.task_config.losses
    num_classes = self.task_config.model.num_classes
    vocabulary = query_vocabulary.QueryVocabulary.of_task(self.task_config)
    box_weights = labels['query_box_weights']
    positives = tf.reduce_sum(box_weights) + 1.0
    cls_weights = labels['cls_weights']
    if examples is not None:
      examples = tf.cast(examples, box_weights.dtype)
      per_example = lambda w: w * tf.reshape(
          examples, [-1] + [1] * (w.shape.rank - 1))
      box_weights, cls_weights = (per_example(box_weights),
                                  per_example(cls_weights))
    logits = tf.gather(
        loss_utils.multi_level_flatten(outputs['query_cls_outputs'],
                                       last_dim=num_classes),
        vocabulary.query_class(labels['query']), axis=2, batch_dims=1)
    targets = tf.cast(loss_utils.multi_level_flatten(
        labels['query_cls_targets'], last_dim=None) > 0, logits.dtype)
    cls_loss = focal_loss.FocalLoss(
        alpha=losses.focal_loss_alpha, gamma=losses.focal_loss_gamma,
        reduction=tf_keras.losses.Reduction.SUM)(
            y_true=targets[..., None], y_pred=logits[..., None],
            sample_weight=cls_weights / positives)
    box_loss = tf_keras.losses.Huber(
        losses.huber_loss_delta, reduction=tf_keras.losses.Reduction.SUM)(
            y_true=loss_utils.multi_level_flatten(labels['box_targets'],
                                                  last_dim=4),
            y_pred=loss_utils.multi_level_flatten(
                outputs['query_box_outputs'], last_dim=4),
            sample_weight=box_weights / positives)
    return cls_loss, box_loss

  def initialize(self, model: tf_keras.Model) -> None:
    """Model Garden's, except that `init_checkpoint_modules: all` may start
    a query detector from a checkpoint without (some of) its query parts.

    A standard detector's checkpoint, or a query detector's with fewer
    modulation sites, then starts it: every detector weight must be found
    (Model Garden's check), while modulation sites and a query table the
    checkpoint lacks keep their initialisation (zero modulation, the
    identity) and are logged. Model Garden's `all` would refuse both.
    """
    config = self.task_config
    if not config.init_checkpoint or config.init_checkpoint_modules != 'all':
      super().initialize(model)
      return
    path = checkpoints.resolve_checkpoint(config.init_checkpoint,
                                          'task.init_checkpoint')
    tf.train.Checkpoint(**model.detector.checkpoint_items).read(
        path).expect_partial().assert_existing_objects_matched()
    tf.train.Checkpoint(modulation=model.modulation,
                        query_embedding=model.query_embedding).read(
                            path).expect_partial()
    saved = {name.split('/.ATTRIBUTES')[0]
             for name, _ in tf.train.list_variables(path)}
    missing = [f'modulation/{kind}/{site}'
               for kind, sites in (('blocks', model.modulation.blocks),
                                   ('levels', model.modulation.levels))
               for site in sites
               if not any(n.startswith(f'modulation/{kind}/{site}/')
                          for n in saved)]
    if not any(n.startswith('query_embedding/') for n in saved):
      missing.append('query_embedding')
    logging.info('Loaded %s; not in it, so left at their initial values: '
                 '%s', path, missing or 'none')

  def _trained_variables(self, model: tf_keras.Model) -> list[tf.Variable]:
    """Every trainable weight, or with `query.train_only_modulation` the
    modulations' and the query embedding's only.

    Raises:
      ValueError: for `train_only_modulation` without a query loss.
    """
    query = self.task_config.query
    if not query.train_only_modulation:
      return model.trainable_variables
    if not query.query_weight:
      raise ValueError('task.query.train_only_modulation trains the query '
                       'pass alone, but task.query.query_weight is 0.')
    return _query_own_variables(model)

  def _query_pass_losses(self, outputs, labels, split: bool
                         ) -> tuple[tf.Tensor, tf.Tensor]:
    """The query pass's loss (focal + weighted Huber): (that of the
    examples every trained weight learns from, that of the examples only
    the query's own weights learn from when `split`, else 0).

    Class queries (present or absent) go to the first with
    `query_gradient: all`, referring ones with `referring_gradient: all`;
    the others to the second.
    """
    def loss(examples):
      cls, box = self.query_losses(outputs, labels, examples)
      return cls + self.task_config.losses.box_loss_weight * box

    if not split:
      return loss(None), tf.constant(0.0)
    query = self.task_config.query
    if query.query_gradient == query.referring_gradient == 'query_only':
      # Every query trains only the query's own weights: no backward pass
      # through the query pass for the shared ones.
      return tf.constant(0.0), loss(None)
    referring = tf.cast(query_vocabulary.QueryVocabulary.of_task(
        self.task_config).query_rule(labels['query']) >= 0, tf.float32)
    own = ((1.0 - referring) * float(query.query_gradient == 'query_only') +
           referring * float(query.referring_gradient == 'query_only'))
    return loss(1.0 - own), loss(own)

  def train_step(self, inputs: tuple[Any, Any], model: tf_keras.Model,
                 optimizer: tf_keras.optimizers.Optimizer,
                 metrics: list[Any] | None = None) -> dict[str, Any]:
    """One joint step; logs Model Garden's losses plus the query's.

    Raises:
      ValueError: for an unknown `query.query_gradient` or
        `query.referring_gradient`, or
        `query_batch_norm: moving` without a standard pass while the
        detector trains (no pass would update its moving statistics).
    """
    features, labels = inputs
    query = self.task_config.query
    for key in ('query_gradient', 'referring_gradient'):
      if getattr(query, key) not in ('all', 'query_only'):
        raise ValueError(f'task.query.{key}: {getattr(query, key)!r}; '
                         'expected all or query_only.')
    # Without a query loss no query pass runs: the standard detector alone,
    # whose batch-norm statistics see standard features only; without a
    # standard loss no standard pass runs.
    query_ids = labels['query'] if query.query_weight else None
    standard = bool(query.standard_weight) or query_ids is None
    if (query.query_batch_norm == 'moving' and not standard and
        not query.train_only_modulation):
      raise ValueError(
          "task.query.query_batch_norm: 'moving' with standard_weight 0: "
          'no pass would update the moving statistics the query pass '
          "normalises with; use 'batch'.")
    # The loss of the queries that train the query's own weights only,
    # differentiated separately.
    split = query_ids is not None and (
        query.query_gradient == 'query_only' or
        (query.referring_gradient == 'query_only' and
         bool(query.referring_probability)))
    with tf.GradientTape(persistent=split) as tape:
      outputs = tf.nest.map_structure(
          lambda t: tf.cast(t, tf.float32),
          model(features, query_ids=query_ids, training=True,
                standard_pass=standard))
      total = cls_loss = box_loss = model_loss = tf.constant(0.0)
      if standard:
        total, cls_loss, box_loss, model_loss = self.build_losses(
            outputs=outputs, labels=labels, aux_losses=model.losses)
      query_loss = own_loss = tf.constant(0.0)
      if query_ids is not None:
        query_loss, own_loss = self._query_pass_losses(outputs, labels,
                                                       split)
      joint = query.standard_weight * total + query.query_weight * query_loss
      scaled = gradient_steps.scaled_loss(joint, optimizer)
      if split:
        scaled_own = gradient_steps.scaled_loss(
            query.query_weight * own_loss, optimizer)
    variables = self._trained_variables(model)
    grads = gradient_steps.gradients(tape, scaled, variables, optimizer)
    if split:
      own = _query_own_variables(model)  # Trained in either case.
      extra = dict(zip(map(id, own), gradient_steps.gradients(
          tape, scaled_own, own, optimizer)))
      grads = [_add(g, extra.get(id(v))) for g, v in zip(grads, variables)]
      del tape
    optimizer.apply_gradients(zip(grads, variables))
    query_loss += own_loss
    joint += query.query_weight * own_loss
    losses = {'total_loss': joint, 'cls_loss': cls_loss,
              'box_loss': box_loss, 'model_loss': model_loss}
    return gradient_steps.update_metrics(
        {self.loss: joint, 'query_loss': query_loss}, losses, metrics)


def _query_own_variables(model: tf_keras.Model) -> list[tf.Variable]:
  """The query's own weights (modulations and embedding): all that
  `train_only_modulation` trains and `query_gradient` /
  `referring_gradient: query_only` let those queries update."""
  return (model.modulation.trainable_variables +
          model.query_embedding.trainable_variables)


def _add(a: tf.Tensor | None, b: tf.Tensor | None) -> tf.Tensor | None:
  """a + b, either of which may be None (no gradient); sparse gradients
  (the query table's) are added dense."""
  if a is None or b is None:
    return b if a is None else a
  return tf.convert_to_tensor(a) + tf.convert_to_tensor(b)
