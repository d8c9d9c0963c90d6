"""Evaluates a query-modulated detector: query-AP vs the filtered standard head.

  python -m univision.evaluation.query_detection_eval \
    --experiment=mnv4_query_ssdlite_composites --checkpoint=runs/query_tops \
    --output_dir=runs/query_tops/query_eval

Every validation image is run once per query class (the classes of the
task's `label_map.json` next to the validation TFRecords, or all classes).
Query-AP (`univision.evaluation.query_ap`) scores the query pass's
detections of the queried class (`query_pass`); the baseline is the same
model's standard pass with its detections filtered to the queried class
(`standard_filtered`, made as the query pass's are:
`QueryRetinaNetModel.class_detections`), over all runs and over the runs
whose image holds the queried class (`scores`); and the standard pass's
COCO mAP over the query classes (`standard`: each image's every-class
detections, by class), and for both passes how much of their present-class
query-AP class confusion costs (`breakdown`: `evaluation.query_headroom`).
A model with referring queries (`the largest c`,
`core.query_vocabulary`) is also asked each of them for every class an
image holds: `referring` compares its query pass's top detection with
detect-then-select-by-rule on its standard pass
(`evaluation.referring_accuracy`). Writes `query_ap.json` and
`detections.png` (query detections on a few images, one row per query).
"""
import json
import os

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf, tf_keras
from official.core import task_factory

import univision  # pylint: disable=unused-import  (sets the Keras mode)
from univision.core import checkpoints
from univision.core import config_parsing
from univision.core import query_vocabulary
from univision.evaluation import query_ap
from univision.evaluation import query_headroom
from univision.evaluation import referring_accuracy


def query_classes(params) -> dict[int, str]:
  """{class id: name} from the val folder's label map, else all ids."""
  pattern = params.task.validation_data.input_path
  label_map = os.path.join(os.path.dirname(pattern), 'label_map.json')
  if tf.io.gfile.exists(label_map):
    with tf.io.gfile.GFile(label_map) as f:
      return {int(k): v for k, v in json.load(f).items()}
  return {c: str(c) for c in range(1, params.task.model.num_classes)}


def _numpy(tensors: dict) -> dict:
  """A batch's tensors as arrays: one copy each, then per-image slices in
  numpy (an eager slice per image, class and key costs more than the
  forward passes)."""
  return tf.nest.map_structure(np.asarray, tensors)


def _gt_boxes(truth: dict, i: int, cls: int) -> np.ndarray:
  """Image i's ground-truth boxes of class `cls` (`truth`: `_numpy`'d)."""
  n = int(truth['num_detections'][i])
  return truth['boxes'][i][:n][truth['classes'][i][:n] == cls]


def _other_boxes(truth: dict, i: int, cls: int) -> np.ndarray:
  """Image i's ground-truth boxes of every class but `cls`."""
  n = int(truth['num_detections'][i])
  return truth['boxes'][i][:n][truth['classes'][i][:n] != cls]


def _detections(outputs: dict, prefix: str, i: int, scale: np.ndarray,
                cls: int | None = None):
  """Image i's detections (those of class `cls` if given; `_numpy`'d)."""
  n = int(outputs[prefix + 'num_detections'][i])
  boxes = outputs[prefix + 'detection_boxes'][i][:n] / np.tile(scale, 2)
  scores = outputs[prefix + 'detection_scores'][i][:n]
  if cls is not None:
    keep = outputs[prefix + 'detection_classes'][i][:n] == cls
    boxes, scores = boxes[keep], scores[keep]
  return boxes, scores


def scores(by_class) -> dict[str, float]:
  """Query-AP over every (image, query) run and over present-class runs.

  Keys: `query_AP`, `AP/<class>` (all runs) and `query_AP_present`,
  `AP_present/<class>` (runs whose image holds the queried class).
  """
  present = query_ap.query_ap(by_class, present_only=True)
  return {**query_ap.query_ap(by_class),
          **{key.replace('AP', 'AP_present', 1) if key.startswith('AP/')
             else 'query_AP_present': value
             for key, value in present.items()}}


def _restored(params, checkpoint: str):
  """The task and its query model with the checkpoint's weights."""
  task = task_factory.get_task(params.task)
  model = task.build_model()
  size = params.task.model.input_size
  model(tf.zeros([1, *size]), query_ids=tf.ones([1], tf.int32),
        training=False)
  tf.train.Checkpoint(**model.checkpoint_items).read(
      checkpoints.resolve_checkpoint(checkpoint)
  ).expect_partial().assert_existing_objects_matched()
  return task, model


def evaluate(params, checkpoint: str, output_dir: str,
             num_plot_images: int = 3,
             referring: bool = True) -> dict[str, dict[str, float]]:
  """Query-AP of the query pass and of the filtered standard pass.

  With `referring` and a model with referring queries, also their
  accuracies (`referring`).
  """
  task, model = _restored(params, checkpoint)
  classes = query_classes(params)
  runs = {'query_pass': {c: [] for c in classes},
          'standard_filtered': {c: [] for c in classes}}
  standard_runs = {c: [] for c in classes}  # Its every-class detections.
  others = {c: [] for c in classes}  # Each run's other-class boxes.
  vocabulary = query_vocabulary.QueryVocabulary.of_task(params.task)
  rules = vocabulary.rules if referring else ()
  cases = []  # referring_accuracy.Case per (image, class, rule).
  shown = []  # (image, class, gt boxes, boxes, scores) for the plot.
  seen = 0
  # One graph per input signature instead of eager calls: 1 + classes
  # forward passes per batch. A query call skips the standard pass (its
  # features, head and every-class NMS), which the batch's first call ran.
  predict = tf.function(lambda images, **kwargs: model(images, **kwargs))
  filtered = tf.function(model.class_detections)
  for images, labels in task.build_inputs(params.task.validation_data):
    batch = int(tf.shape(images)[0])
    kwargs = dict(image_shape=labels['image_info'][:, 1, :],
                  anchor_boxes=labels['anchor_boxes'], training=False)
    standard_tensors = predict(images, **kwargs)
    standard = _numpy(standard_tensors)
    truth = _numpy(labels['groundtruths'])
    scales = labels['image_info'][:, 2].numpy()
    for cls in classes:
      ids = tf.fill([batch], cls)
      queried = _numpy(predict(images, query_ids=ids,
                               standard_pass=False, **kwargs))
      standard_q = _numpy(filtered(standard_tensors, '', ids,
                                   kwargs['image_shape'],
                                   kwargs['anchor_boxes']))
      gts = [_gt_boxes(truth, i, cls) for i in range(batch)]
      others[cls].extend(_other_boxes(truth, i, cls) for i in range(batch))
      for i, gt in enumerate(gts):
        scale = scales[i]
        runs['query_pass'][cls].append(
            (gt, *_detections(queried, 'query_', i, scale)))
        runs['standard_filtered'][cls].append(
            (gt, *_detections(standard_q, '', i, scale)))
        standard_runs[cls].append(
            (gt, *_detections(standard, '', i, scale, cls)))
        if seen + i < num_plot_images:
          shown.append((images[i].numpy(), cls, gt,
                         *_detections(queried, 'query_', i, scale)))
      for rule in rules:
        queried = _numpy(predict(images, query_ids=tf.fill(
            [batch], vocabulary.query_id(cls, rule)),
                                 standard_pass=False, **kwargs))
        for i, gt in enumerate(gts):
          if not len(gt):
            continue
          scale = scales[i]
          cases.append(referring_accuracy.Case(
              rule, gt[query_vocabulary.select(gt, rule)],
              _detections(queried, 'query_', i, scale)[0],
              *_detections(standard_q, '', i, scale)))
    seen += batch
  results = {name: scores(by_class) for name, by_class in runs.items()}
  results['breakdown'] = {name: query_headroom.breakdown(by_class, others)
                          for name, by_class in runs.items()}
  # COCO mAP of the standard detector: per class, every image's detections
  # of that class from its one every-class detection list.
  results['standard'] = {
      key.replace('query_AP', 'mAP'): value
      for key, value in query_ap.query_ap(standard_runs).items()}
  if cases:
    results['referring'] = referring_accuracy.accuracies(cases)
  os.makedirs(output_dir, exist_ok=True)
  with open(os.path.join(output_dir, 'query_ap.json'), 'w') as f:
    json.dump({'classes': classes, **results}, f, indent=1)
  plot(shown, classes, os.path.join(output_dir, 'detections.png'))
  return results


def two_queries(params, checkpoint: str, path: str,
                score_threshold: float = 0.3) -> tuple[int, int, int]:
  """The first validation image holding two query classes, asked both.

  Three panels: the standard pass's detections of the two classes, then
  the query pass's detections for each query (boxes at or above
  `score_threshold`; ground truth of the panel's classes in green).

  Returns:
    (index of the image in the split, first class, second class).

  Raises:
    ValueError: naming the split, if no image holds two query classes.
  """
  task, model = _restored(params, checkpoint)
  classes = query_classes(params)
  seen = 0
  for images, labels in task.build_inputs(params.task.validation_data):
    truth = _numpy(labels['groundtruths'])
    for i in range(int(tf.shape(images)[0])):
      n = int(truth['num_detections'][i])
      present = sorted(set(truth['classes'][i][:n].tolist()) & set(classes))
      if len(present) < 2:
        continue
      pair = present[:2]
      kwargs = dict(image_shape=labels['image_info'][i:i + 1, 1, :],
                    anchor_boxes={k: v[i:i + 1] for k, v in
                                  labels['anchor_boxes'].items()},
                    training=False)
      image = images[i:i + 1]
      scale = labels['image_info'][i, 2].numpy()
      standard = _numpy(model(image, **kwargs))
      panels = [('standard detector', pair,
                 [_detections(standard, '', 0, scale, c) for c in pair])]
      for cls in pair:
        queried = _numpy(model(image, query_ids=tf.constant([cls]),
                               standard_pass=False, **kwargs))
        panels.append((f'query: {classes[cls]}', [cls],
                       [_detections(queried, 'query_', 0, scale)]))
      _plot_panels(image[0].numpy(), truth, i, classes, panels,
                   dict(zip(pair, ('red', 'deepskyblue'))), path,
                   score_threshold)
      return seen + i, pair[0], pair[1]
    seen += int(tf.shape(images)[0])
  raise ValueError(f'{params.task.validation_data.input_path}: no image '
                   'holds two of the query classes.')


def _plot_panels(image, truth, i, classes, panels, colors, path,
                 score_threshold) -> None:
  """One image, one panel per (title, classes, [(boxes, scores)])."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  figure, axes = pyplot.subplots(1, len(panels),
                                 figsize=(3.2 * len(panels), 3.6))
  for ax, (title, panel_classes, detections) in zip(axes, panels):
    _show(ax, image)
    for cls, (boxes, scores) in zip(panel_classes, detections):
      _draw_boxes(ax, _gt_boxes(truth, i, cls), 'lime', 1.5)
      kept = [(b, s) for b, s in zip(boxes, scores) if s >= score_threshold]
      _draw_boxes(ax, [b for b, _ in kept], colors[cls], 1,
                  [f'{classes[cls]} {s:.2f}' for _, s in kept])
    ax.set_title(title, fontsize=9)
  figure.suptitle(f'green: ground truth; boxes: detections >= '
                  f'{score_threshold}', fontsize=8)
  figure.tight_layout()
  figure.savefig(path, dpi=110)
  pyplot.close(figure)


def _show(ax, image) -> None:
  """The image, stretched to [0, 1], without axes."""
  ax.axis('off')
  shown = image - image.min()
  ax.imshow(shown / max(shown.max(), 1e-6))


def _draw_boxes(ax, boxes, color: str, width: float, labels=()) -> None:
  """[y0, x0, y1, x1] boxes as rectangles, each with its label if given."""
  from matplotlib import patches  # pylint: disable=g-import-not-at-top
  for k, (y0, x0, y1, x1) in enumerate(boxes):
    ax.add_patch(patches.Rectangle(
        (x0, y0), x1 - x0, y1 - y0, fill=False, color=color, lw=width))
    if k < len(labels):
      ax.text(x0, y0, labels[k], color=color, fontsize=6, va='bottom')


def plot(shown, classes: dict[int, str], path: str,
         score_threshold: float = 0.3) -> None:
  """One row per query class, one column per image; boxes above threshold."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  columns = max(1, max(sum(1 for s in shown if s[1] == c) for c in classes))
  figure, axes = pyplot.subplots(len(classes), columns,
                                 figsize=(2.2 * columns, 2.2 * len(classes)),
                                 squeeze=False)
  for row, cls in enumerate(classes):
    items = [s for s in shown if s[1] == cls]
    for col in range(columns):
      ax = axes[row][col]
      ax.axis('off')
      if col >= len(items):
        continue
      image, _, gt, boxes, scores = items[col]
      _show(ax, image)
      _draw_boxes(ax, gt, 'lime', 1)
      _draw_boxes(ax, [b for b, sc in zip(boxes, scores)
                       if sc >= score_threshold], 'red', 1)
      if col == 0:
        ax.set_title(f'query: {classes[cls]}', fontsize=8, loc='left')
  figure.suptitle(f'green: ground truth of the query class; red: query '
                  f'detections >= {score_threshold}', fontsize=8)
  figure.tight_layout()
  figure.savefig(path, dpi=110)
  pyplot.close(figure)


def _define_flags() -> None:
  flags.DEFINE_string('experiment', 'mnv4_query_ssdlite_composites',
                      'Registered experiment.')
  flags.DEFINE_multi_string('config_file', None, 'YAML overrides.')
  flags.DEFINE_string('params_override', '', 'Final overrides.')
  flags.DEFINE_string('checkpoint', None, 'Checkpoint or run folder.')
  flags.DEFINE_string('output_dir', None, 'Where results go.')
  flags.mark_flags_as_required(['checkpoint', 'output_dir'])


def main(_):
  # The program entry point registers the experiments.
  from univision import registry_imports  # pylint: disable=g-import-not-at-top,unused-import
  f = flags.FLAGS
  params = config_parsing.parse_experiment(f.experiment, f.config_file,
                                           f.params_override)
  results = evaluate(params, f.checkpoint, f.output_dir)
  referring = results.pop('referring', None)
  print(f'standard: mAP {results.pop("standard")["mAP"]:.4f}')
  for name, result in results.items():
    print(f'{name}: query-AP {result["query_AP"]:.4f} (present-class '
          f'queries {result["query_AP_present"]:.4f})')
  if referring:
    print(f'referring queries: query pass {referring["query_pass"]:.4f}, '
          f'select by rule {referring["select_by_rule"]:.4f} (threshold '
          f'{referring["select_by_rule_threshold"]})')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
