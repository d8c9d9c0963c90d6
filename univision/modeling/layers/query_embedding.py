"""Query embeddings: a learned table, or fixed vectors read from a file.

A query is an id 1..num_queries-1 (`core.query_vocabulary`: class ids as in
the detection labels, then referring queries). Its vector comes from a
trainable table, or from precomputed vectors (e.g. text embeddings of the
class names) in a `.npy` file of shape [num_queries, dim] - row 0, the
background, is never queried - kept fixed unless `trainable_vectors`.
"""
from typing import Any

import numpy as np
import tensorflow as tf, tf_keras


def read_vectors(path: str, num_queries: int) -> np.ndarray:
  """Reads [num_queries, dim] float vectors from a `.npy` file.

  Raises:
    ValueError: naming the file, for an unreadable file or a wrong shape.
  """
  try:
    with tf.io.gfile.GFile(path, 'rb') as f:
      vectors = np.load(f, allow_pickle=False)
  except (OSError, ValueError) as e:
    raise ValueError(f'{path}: not a readable .npy file ({e}).') from e
  if vectors.ndim != 2 or vectors.shape[0] != num_queries:
    raise ValueError(f'{path}: query vectors of shape {vectors.shape}; '
                     f'want [{num_queries}, dim] (one row per query id, '
                     'row 0 the background).')
  if not np.isfinite(vectors).all():
    raise ValueError(f'{path}: query vectors contain NaN or infinity.')
  return vectors.astype(np.float32)


@tf_keras.utils.register_keras_serializable(package='univision')
class QueryEmbedding(tf_keras.layers.Layer):
  """Query id [B] -> query vector [B, dim]."""

  def __init__(self, num_queries: int, dim: int | None = None,
               vectors_path: str | None = None,
               trainable_vectors: bool = False, **kwargs):
    """Initializes the layer.

    Args:
      num_queries: Query ids 0..num_queries-1 (0: background, no query).
      dim: Vector size of a learned table; with `vectors_path`, None or the
        file's vector size.
      vectors_path: A `.npy` file of [num_queries, dim] fixed vectors.
      trainable_vectors: Whether the file's vectors are fine-tuned.
      **kwargs: `tf_keras.layers.Layer` arguments.
    """
    super().__init__(**kwargs)
    self._num_queries = num_queries
    self._vectors_path = vectors_path
    self._trainable_vectors = trainable_vectors
    self._initial = None
    if vectors_path:
      self._initial = read_vectors(vectors_path, num_queries)
      if dim not in (None, self._initial.shape[1]):
        raise ValueError(f'{vectors_path}: vectors of size '
                         f'{self._initial.shape[1]}, but dim={dim}.')
      dim = self._initial.shape[1]
    if not dim:
      raise ValueError(f'{self.name}: give `dim` or `vectors_path`.')
    self._dim = dim

  def build(self, input_shape):
    initializer = ('random_normal' if self._initial is None else
                   tf_keras.initializers.Constant(self._initial))
    self.table = self.add_weight(
        'table', shape=[self._num_queries, self._dim],
        initializer=initializer,
        trainable=self._initial is None or self._trainable_vectors)
    super().build(input_shape)

  def call(self, query_ids: tf.Tensor) -> tf.Tensor:
    """Query vectors [B, dim] of query ids [B].

    Raises:
      tf.errors.InvalidArgumentError: for an id outside 1..num_queries-1
        (0 is the background; a gather on a GPU would silently return a
        row of zeros, i.e. a query for nothing).
    """
    ids = tf.cast(query_ids, tf.int32)
    valid = tf.reduce_all((ids >= 1) & (ids < self._num_queries))
    check = tf.debugging.Assert(valid, [
        f'{self.name}: query ids must be 1..{self._num_queries - 1} (0 is '
        'the background); got', ids],
                                summarize=16)
    with tf.control_dependencies([check]):
      return tf.gather(self.table, ids)

  def get_config(self) -> dict[str, Any]:
    return {**super().get_config(), 'num_queries': self._num_queries,
            'dim': self._dim, 'vectors_path': self._vectors_path,
            'trainable_vectors': self._trainable_vectors}
