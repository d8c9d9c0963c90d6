"""Query-modulated RetinaNet: modulation inside the backbone, one shared head."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from official.core import exp_factory
from official.core import task_factory

from univision import registry_imports  # pylint: disable=unused-import
from univision.core import query_vocabulary
from univision.modeling.detectors import query_retinanet
from univision.modeling.layers import conv_norm

SIZE = 64
CLASSES = 5


def _detector(threshold=0.0):
  params = exp_factory.get_exp_config('mnv4_ssdlite_composites')
  params.override({'task': {'model': {
      'input_size': [SIZE, SIZE, 3], 'num_classes': CLASSES,
      'detection_generator': {'pre_nms_score_threshold': threshold}}}})
  return task_factory.get_task(params.task).build_model()


def _build(**kwargs):
  model = query_retinanet.build(_detector(), CLASSES, embedding_dim=8,
                                **kwargs)
  images = tf.random.stateless_normal([2, SIZE, SIZE, 3], [0, 1])
  model(images, query_ids=tf.constant([1, 2]), training=False)
  return model, images


@pytest.fixture(scope='module')
def model():
  return _build()


def _randomize(model, seed=3):
  rng = np.random.default_rng(seed)
  weights = model.modulation.get_weights()
  model.modulation.set_weights(
      [0.3 * rng.normal(size=w.shape) for w in weights])
  return weights


def test_sites_are_the_last_two_stages_blocks_and_every_decoder_level(model):
  query_model, _ = model
  levels = query_retinanet.block_levels(query_model.backbone)
  assert query_model.modulation.block_indices == [
      i for i, level in enumerate(levels) if level in (4, 5)]
  assert sorted(query_model.modulation.levels) == ['3', '4', '5', '6']


def test_zero_modulation_query_detections_are_the_standard_ones_of_q(model):
  query_model, images = model
  ids = tf.constant([1, 3])
  out = query_model(images, query_ids=ids, training=False)
  for key in ('cls_outputs', 'box_outputs'):
    for level in out[key]:
      np.testing.assert_array_equal(out['query_' + key][level],
                                    out[key][level])
  anchors = query_model._anchors(images)  # pylint: disable=protected-access
  filtered = query_model.class_detections(out, '', ids, None, anchors)
  for key, value in filtered.items():
    np.testing.assert_array_equal(out['query_' + key], value)
  for i, q in enumerate([1, 3]):
    n = int(out['query_num_detections'][i])
    assert n > 0
    np.testing.assert_array_equal(out['query_detection_classes'][i][:n], q)
    # The standard detections of class q (after NMS over every class) are
    # the query's best ones.
    keep = out['detection_classes'][i][:int(out['num_detections'][i])] == q
    standard = out['detection_scores'][i][:len(keep)].numpy()[keep.numpy()]
    np.testing.assert_array_equal(
        standard, out['query_detection_scores'][i][:len(standard)])


def _masked_detections(query_model, out, classes, anchors):
  """Reference: every class but `classes` masked, all classes through NMS."""
  one_hot = tf.one_hot(classes, CLASSES, on_value=True,
                       off_value=False)[:, None, None, :]
  masked = {level: tf.where(tf.tile(one_hot, [1, 1, 1, s.shape[-1] //
                                              CLASSES]), s, -1e4)
            for level, s in out['cls_outputs'].items()}
  return query_model.detector.detection_generator(
      out['box_outputs'], masked, anchors, None)


def test_class_detections_equal_nms_over_every_class_with_others_masked():
  # A random head and a score threshold that keeps some of its boxes, so
  # NMS has work to do and the detections end before max_num_detections.
  tf_keras.utils.set_random_seed(0)
  query_model = query_retinanet.build(_detector(threshold=0.5), CLASSES,
                                      embedding_dim=8)
  images = tf.random.stateless_normal([2, SIZE, SIZE, 3], [4, 2])
  out = query_model(images, training=False)
  rng = np.random.default_rng(0)
  query_model.head.set_weights([0.05 * rng.normal(size=w.shape)
                                for w in query_model.head.get_weights()])
  out = query_model(images, training=False)
  anchors = query_model._anchors(images)  # pylint: disable=protected-access
  classes = tf.constant([2, 4])
  fast = query_model.class_detections(out, '', classes, None, anchors)
  slow = _masked_detections(query_model, out, classes, anchors)
  np.testing.assert_array_equal(fast['num_detections'],
                                slow['num_detections'])
  for i, q in enumerate([2, 4]):
    n = int(slow['num_detections'][i])
    assert 0 < n < 100, n
    for key in ('detection_boxes', 'detection_scores', 'detection_classes'):
      np.testing.assert_array_equal(fast[key][i][:n], slow[key][i][:n])
    np.testing.assert_array_equal(fast['detection_classes'][i], q)


def test_without_the_standard_pass_only_the_query_pass_runs(model):
  query_model, images = model
  ids = tf.constant([1, 3])
  both = query_model(images, query_ids=ids, training=False)
  query_only = query_model(images, query_ids=ids, training=False,
                           standard_pass=False)
  assert not {'detection_scores', 'cls_outputs'} & set(query_only)
  for key in ('query_detection_scores', 'query_detection_boxes',
              'query_detection_classes'):
    np.testing.assert_array_equal(query_only[key], both[key])
  np.testing.assert_array_equal(query_only['query_cls_outputs']['4'],
                                both['query_cls_outputs']['4'])
  # Without a query the model is the standard detector whatever the flag.
  assert 'detection_scores' in query_model(images, training=False,
                                           standard_pass=False)


def test_query_steers_the_last_stages_and_not_the_early_ones(model):
  query_model, images = model
  saved = _randomize(query_model)
  try:
    query = query_model.query_embedding(tf.constant([1, 1]))
    standard, queried = query_model._backbone_passes(  # pylint: disable=protected-access
        images, query, training=False)
    other = query_model(images, query_ids=tf.constant([4, 4]),
                        training=False)
    first = query_model(images, query_ids=tf.constant([1, 1]),
                        training=False)
  finally:
    query_model.modulation.set_weights(saved)
  for level in ('2', '3'):
    np.testing.assert_array_equal(standard[level], queried[level])
  for level in ('4', '5'):
    assert not np.allclose(standard[level], queried[level])
  # The standard pass is the plain detector whatever the query.
  np.testing.assert_array_equal(first['cls_outputs']['4'],
                                other['cls_outputs']['4'])
  plain = query_model.detector(images, training=False)
  np.testing.assert_allclose(first['cls_outputs']['4'],
                             plain['cls_outputs']['4'], atol=1e-5)
  assert not np.allclose(first['query_cls_outputs']['4'],
                         other['query_cls_outputs']['4'])


def test_decoder_only_ablation_leaves_the_backbone_alone():
  query_model, images = _build(backbone_levels=[])
  assert query_model.modulation.block_indices == []
  _randomize(query_model)
  query = query_model.query_embedding(tf.constant([2, 2]))
  standard, queried = query_model._backbone_passes(  # pylint: disable=protected-access
      images, query, training=False)
  for level in standard:
    np.testing.assert_array_equal(standard[level], queried[level])
  out = query_model(images, query_ids=tf.constant([2, 2]), training=False)
  assert not np.allclose(out['query_cls_outputs']['4'],
                         out['cls_outputs']['4'])


def test_query_vectors_instead_of_ids(model):
  query_model, images = model
  saved = _randomize(query_model)
  try:
    by_id = query_model(images, query_ids=tf.constant([2, 4]), training=True)
    vectors = query_model.query_embedding(tf.constant([2, 4]))
    by_vector = query_model(images, query_vectors=vectors, training=True)
  finally:
    query_model.modulation.set_weights(saved)
  np.testing.assert_allclose(by_id['query_cls_outputs']['4'],
                             by_vector['query_cls_outputs']['4'], atol=1e-5)
  with pytest.raises(ValueError, match='not both'):
    query_model(images, query_ids=tf.constant([2, 4]), query_vectors=vectors,
                training=True)
  standard = query_model(images, training=False)
  assert 'query_cls_outputs' not in standard


def test_a_query_id_that_is_no_class_is_an_error(model):
  query_model, images = model
  for bad in (0, CLASSES):
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r'query ids must be 1\.\.4'):
      query_model(images, query_ids=tf.constant([1, bad]), training=False)


def test_referring_queries_read_their_class_and_steer_apart_from_it():
  vocab = query_vocabulary.QueryVocabulary(CLASSES, ('largest', 'leftmost'))
  query_model, images = _build(query_classes=vocab.class_table())
  assert query_model.query_embedding.table.shape[0] == vocab.size == 13
  largest, leftmost = vocab.query_id(3, 'largest'), vocab.query_id(3,
                                                                   'leftmost')
  ids = tf.constant([3, largest])
  out = query_model(images, query_ids=ids, training=False)
  # Zero modulation: "the largest 3" is read from class 3's column.
  n = int(out['query_num_detections'][1])
  assert n > 0
  np.testing.assert_array_equal(out['query_detection_classes'][1][:n], 3)
  anchors = query_model._anchors(images)  # pylint: disable=protected-access
  filtered = query_model.class_detections(out, '', tf.constant([3, 3]), None,
                                          anchors)
  np.testing.assert_array_equal(out['query_detection_scores'],
                                filtered['detection_scores'])
  # Each referring query has its own embedding: trained modulation tells
  # it apart from its class's query.
  _randomize(query_model)
  same = tf.constant([largest, largest])
  a = query_model(images, query_ids=same, training=False)
  b = query_model(images, query_ids=tf.constant([leftmost, 3]),
                  training=False)
  assert not np.allclose(a['query_cls_outputs']['4'],
                         b['query_cls_outputs']['4'])
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'query ids must be 1\.\.12'):
    query_model(images, query_ids=tf.constant([13, 1]), training=False)
  with pytest.raises(ValueError, match='query_classes'):
    query_retinanet.build(_detector(), CLASSES, query_classes=[0, 5, 1])


def test_checkpoint_items_cover_every_variable(model):
  query_model, _ = model
  covered = {id(v) for item in query_model.checkpoint_items.values()
             for v in item.weights}
  assert covered == {id(v) for v in query_model.weights}


@pytest.mark.parametrize('modulation', ['gate', 'concat'])
def test_other_modulations_start_as_identity_and_then_follow_the_query(
    modulation):
  query_model, images = _build(modulation=modulation)
  outputs = lambda q: query_model(images[:1], query_ids=tf.constant([q]),
                                  training=False)['query_cls_outputs']['4']
  level5 = lambda q: query_model._backbone_passes(  # pylint: disable=protected-access
      images[:1], query_model.query_embedding(tf.constant([q])),
      training=False)[1]['5']
  np.testing.assert_array_equal(outputs(1), outputs(3))
  np.testing.assert_array_equal(level5(1), level5(3))
  _randomize(query_model)
  assert not np.allclose(level5(1), level5(3))
  assert not np.array_equal(outputs(1), outputs(3))


def test_pre_activation_placement_modulates_inside_the_blocks():
  query_model, images = _build(backbone_placement='pre_activation',
                               backbone_levels=[3, 4, 5])
  blocks = query_model.backbone.blocks
  kinds = set()
  for i in query_model.modulation.block_indices:
    site = query_model.modulation.blocks[str(i)]
    assert site._channels == blocks[i].pre_activation_channels  # pylint: disable=protected-access
    kinds.add(type(blocks[i]).__name__)
    if hasattr(blocks[i], 'expand'):  # A bottleneck: its widest features.
      assert blocks[i].pre_activation_channels > blocks[i].output_shape[-1]
  assert kinds == {'ConvNormAct', 'UniversalInvertedBottleneck'}
  ids = tf.constant([1, 3])
  out = query_model(images, query_ids=ids, training=False)
  for level in out['cls_outputs']:  # Zero modulation: the standard pass.
    np.testing.assert_array_equal(out['query_cls_outputs'][level],
                                  out['cls_outputs'][level])
  _randomize(query_model)
  query = query_model.query_embedding(ids)
  standard, queried = query_model._backbone_passes(  # pylint: disable=protected-access
      images, query, training=False)
  np.testing.assert_array_equal(standard['2'], queried['2'])
  for level in ('3', '4', '5'):
    assert not np.allclose(standard[level], queried[level])


@pytest.mark.parametrize('query_batch_norm', ['batch', 'moving'])
def test_moving_query_batch_norm_trains_the_query_pass_as_it_serves(
    query_batch_norm):
  # Every block modulated, so that the whole query pass is its own.
  query_model, images = _build(backbone_levels=[1, 2, 3, 4, 5],
                               query_batch_norm=query_batch_norm)
  _randomize(query_model)
  ids = tf.constant([1, 3])
  statistics = lambda: [v.numpy() for v in query_model.variables
                        if 'moving_' in v.name]
  before = statistics()
  run = lambda training: query_model(images, query_ids=ids,
                                     training=training, standard_pass=False)
  served, trained = run(False), run(True)
  alike = all(np.allclose(trained['query_cls_outputs'][level],
                          served['query_cls_outputs'][level], atol=1e-5)
              for level in served['query_cls_outputs'])
  kept = all(np.array_equal(a, b) for a, b in zip(before, statistics()))
  assert alike == kept == (query_batch_norm == 'moving')
  # The standard pass updates them either way.
  query_model(images, training=True)
  assert not all(np.array_equal(a, b) for a, b in zip(before, statistics()))
  if query_batch_norm == 'moving':
    with pytest.raises(ValueError, match="query_batch_norm: 'frozen'"):
      query_retinanet.build(_detector(), CLASSES, query_batch_norm='frozen')


def test_bad_sites_are_named(monkeypatch):
  # A block without normalised pre-activation features (as attention
  # blocks have none) is refused by index and type.
  detector = _detector()
  monkeypatch.delattr(conv_norm.ConvNormAct, 'pre_activation_channels')
  with pytest.raises(ValueError, match=r'pre_activation needs '
                     r'convolutional blocks, but the blocks \[.*ConvNormAct'):
    query_retinanet.build(detector, CLASSES, backbone_levels=[3],
                          backbone_placement='pre_activation')
  monkeypatch.undo()
  with pytest.raises(ValueError, match="task.query.modulation: 'add'"):
    query_retinanet.build(_detector(), CLASSES, modulation='add')
  with pytest.raises(ValueError, match=r'backbone_levels: \[4, 7\].*\[7\]'):
    query_retinanet.build(_detector(), CLASSES, backbone_levels=[4, 7])
  with pytest.raises(ValueError, match='would change nothing'):
    query_retinanet.build(_detector(), CLASSES, backbone_levels=[],
                          decoder=False)
