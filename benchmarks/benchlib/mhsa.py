"""Plain multi-head self-attention over a feature map, the MQA baseline.

The same layer as univision's `MobileMultiQueryAttention` (1x1-conv
projections without bias, the same optional strided depthwise conv + BN
downsampling of keys and values, the same query heads and head dims) except
that keys and values have `num_heads` heads each instead of one shared
head: the only difference Mobile MQA makes, so timing the two isolates it.
"""
import tensorflow as tf

from univision.modeling.layers import mobile_mqa


class MultiHeadSelfAttention(mobile_mqa.MobileMultiQueryAttention):
  """Multi-head attention with `num_heads` key and value heads."""

  def build(self, input_shape):
    super().build(input_shape)
    self.key_proj = self._pointwise(self._num_heads * self._key_dim)
    self.value_proj = self._pointwise(self._num_heads * self._value_dim)

  def call(self, inputs, training=None):
    shape = tf.shape(inputs)
    batch, height, width = shape[0], shape[1], shape[2]
    heads, key_dim, value_dim = self._num_heads, self._key_dim, self._value_dim
    query = tf.reshape(self.query_proj(inputs),
                       [batch, height * width, heads, key_dim])
    key_in, value_in = inputs, inputs
    if self.key_down is not None:
      key_in = self.key_down(inputs, training=training)
      value_in = self.value_down(inputs, training=training)
    key = tf.reshape(self.key_proj(key_in), [batch, -1, heads, key_dim])
    value = tf.reshape(self.value_proj(value_in),
                       [batch, -1, heads, value_dim])
    # l: query positions, h: heads, m: (downsampled) key positions.
    logits = tf.einsum('blhk,bmhk->bhlm', query, key)
    logits *= tf.cast(key_dim, logits.dtype) ** -0.5
    probs = self.attention_dropout(tf.nn.softmax(logits, axis=-1),
                                   training=training)
    out = tf.einsum('bhlm,bmhv->blhv', probs, value)
    out = tf.reshape(out, [batch, height, width, heads * value_dim])
    return self.output_proj(out)
