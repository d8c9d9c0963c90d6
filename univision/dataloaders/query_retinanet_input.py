"""Model Garden's RetinaNet parser, plus a synthesized query per example.

Training examples get a query (`query_synthesis.synthesize`: a present
class, or with `absent_probability` an absent one; a present class may
become a referring query, `query_synthesis.refer`) and the query pass's
targets (`query_synthesis.query_labels`) next to Model Garden's standard
targets, which keep every box. The query is drawn before augmentation; if
cropping removes its boxes the example becomes an absent-class query, and
its targets say so (they are computed after augmentation, so is the box a
referring rule selects). Evaluation examples are Model Garden's.
"""
from official.vision.dataloaders import retinanet_input

from univision.core import query_vocabulary
from univision.dataloaders import query_synthesis


class Parser(retinanet_input.Parser):
  """RetinaNet parser with query-modulated detection targets."""

  def __init__(self, num_classes: int, absent_probability: float,
               referring_rules: tuple[str, ...] = (),
               referring_probability: float = 0.0,
               query_classes: tuple[int, ...] = (), **kwargs):
    """Initializes the parser.

    Args:
      num_classes: The detector's `num_classes` (background included).
      absent_probability: Chance of querying a class absent from the image.
      referring_rules: Rules of referring queries (`query_vocabulary`).
      referring_probability: Chance that a present class query becomes a
        referring one.
      **kwargs: `retinanet_input.Parser` arguments.
    """
    super().__init__(**kwargs)
    for key, value in (('absent_probability', absent_probability),
                       ('referring_probability', referring_probability)):
      if not 0.0 <= value <= 1.0:
        raise ValueError(f'task.query.{key}: {value} is not in [0, 1].')
    if referring_probability and not referring_rules:
      raise ValueError(f'task.query.referring_probability: '
                       f'{referring_probability} with no referring_rules.')
    self._num_classes = num_classes
    self._absent_probability = absent_probability
    self._vocabulary = query_vocabulary.QueryVocabulary(
        num_classes, tuple(referring_rules))
    self._referring_probability = referring_probability
    self._query_classes = tuple(query_classes)

  def _parse_train_data(self, data, anchor_labeler=None, input_anchor=None):
    query, positives = query_synthesis.synthesize(
        data['groundtruth_classes'], self._num_classes,
        self._absent_probability, query_classes=self._query_classes)
    query = query_synthesis.refer(query, positives, self._vocabulary,
                                  self._referring_probability)
    image, labels = super()._parse_train_data(data, anchor_labeler,
                                              input_anchor)
    labels.update(query_synthesis.query_labels(
        labels, query, self._vocabulary, self._box_coder_weights))
    return image, labels
