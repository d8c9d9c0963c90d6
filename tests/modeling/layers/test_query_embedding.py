"""Query embeddings: learned table or fixed vectors from a file."""
import numpy as np
import pytest
import tensorflow as tf

from univision.modeling.layers import query_embedding


def test_learned_table_is_trainable_and_indexed_by_class():
  layer = query_embedding.QueryEmbedding(5, 8)
  out = layer(tf.constant([1, 4, 1]))
  assert out.shape == (3, 8) and len(layer.trainable_weights) == 1
  np.testing.assert_array_equal(out[0], out[2])
  np.testing.assert_array_equal(out[1], layer.table.numpy()[4])


def test_vectors_from_file_are_fixed_unless_asked(tmp_path):
  vectors = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
  path = str(tmp_path / 'names.npy')
  np.save(path, vectors)
  layer = query_embedding.QueryEmbedding(5, vectors_path=path)
  np.testing.assert_array_equal(layer(tf.constant([2, 3])), vectors[[2, 3]])
  assert not layer.trainable_weights
  tuned = query_embedding.QueryEmbedding(5, vectors_path=path,
                                         trainable_vectors=True)
  tuned(tf.constant([1]))
  assert len(tuned.trainable_weights) == 1
  clone = query_embedding.QueryEmbedding.from_config(layer.get_config())
  np.testing.assert_array_equal(clone(tf.constant([4])), vectors[[4]])


@pytest.mark.parametrize('content,match', [
    (np.zeros((4, 3)), r'shape \(4, 3\); want \[5, dim\]'),
    (np.full((5, 3), np.nan), 'NaN'),
])
def test_bad_vector_files_are_named(tmp_path, content, match):
  path = str(tmp_path / 'bad.npy')
  np.save(path, content)
  with pytest.raises(ValueError, match=f'bad.npy: .*{match}'):
    query_embedding.QueryEmbedding(5, vectors_path=path)
  (tmp_path / 'junk.npy').write_bytes(b'not numpy')
  with pytest.raises(ValueError, match='junk.npy: not a readable'):
    query_embedding.QueryEmbedding(5, vectors_path=str(tmp_path / 'junk.npy'))
