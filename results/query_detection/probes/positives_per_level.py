import numpy as np, tensorflow as tf
from univision import registry_imports
from univision.studies import query_detection as qd
from official.core import task_factory
params = qd.run_config('data/composites/crowded_clothing', '', 2000, 0, '', 6)
task = task_factory.get_task(params.task)
ds = iter(task.build_inputs(params.task.train_data))
counts = {}
for _ in range(10):
  images, labels = next(ds)
  for level, t in labels['cls_targets'].items():
    counts[level] = counts.get(level, 0) + int(tf.reduce_sum(tf.cast(t > 0, tf.int32)))
print('positive anchors per level (10 batches):', counts)
print({k: v for k, v in labels.items() if 'query' in k})
print(params.task.model.decoder.as_dict(), params.task.model.min_level, params.task.model.max_level, params.task.model.input_size)
