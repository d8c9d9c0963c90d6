"""Model Garden's RetinaNet parser, plus a synthesized query per example.

Training examples get a query (`query_synthesis.synthesize`: a present
class, or with `absent_probability` an absent one) and the query pass's
targets (`query_synthesis.query_labels`) next to Model Garden's standard
targets, which keep every box. The query is drawn before augmentation; if
cropping removes its boxes the example becomes an absent-class query, and
its targets say so (they are computed after augmentation). Evaluation
examples are Model Garden's.
"""
import tensorflow as tf, tf_keras
from official.vision.dataloaders import retinanet_input

from univision.dataloaders import query_synthesis


class Parser(retinanet_input.Parser):
  """RetinaNet parser with query-modulated detection targets."""

  def __init__(self, num_classes: int, absent_probability: float,
               **kwargs):
    """Initializes the parser.

    Args:
      num_classes: The detector's `num_classes` (background included).
      absent_probability: Chance of querying a class absent from the image.
      **kwargs: `retinanet_input.Parser` arguments.
    """
    super().__init__(**kwargs)
    if not 0.0 <= absent_probability <= 1.0:
      raise ValueError(f'absent_probability {absent_probability} is not in '
                       '[0, 1].')
    self._num_classes = num_classes
    self._absent_probability = absent_probability

  def _parse_train_data(self, data, anchor_labeler=None, input_anchor=None):
    query, _ = query_synthesis.synthesize(
        data['groundtruth_classes'], self._num_classes,
        self._absent_probability)
    image, labels = super()._parse_train_data(data, anchor_labeler,
                                              input_anchor)
    labels.update(query_synthesis.query_labels(labels, query))
    return image, labels
