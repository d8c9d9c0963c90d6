"""MobileNetV4 NAS on Fashion-MNIST: the command and its outputs.

  python -m univision.efficiency.nas_search --output_dir=results/nas \
    --data=data/fashion_mnist --profile=edgetpu

Searches `nas_space.conv_small_space` (MNv4-Conv-S's layout, its two UIB
stages searched) with `nas_loop.Search`: costs are roofline latencies on
`--profile` at `--latency_resolution` (`nas_objective`), the accuracy proxy
a short run of the NAS recipe at `--proxy_resolution` (`nas_proxy`). The
reward's target latency defaults to MNv4-Conv-S's own on the profile; the
hard budget is `--latency_budget` times the target and `--max_mmacs`.

Outputs in `--output_dir`: `trials.csv` (every candidate; a restarted search
with the same flags replays it and trains only what is missing),
`search.json` (the settings), `best_spec.yaml` (the winner's block-spec
table), `fashion_mnist_mnv4_nas_cpu.yaml` (the NAS recipe pointing at it,
ready for `train.py --experiment=mnv4_fashion_mnist --config_file=...`),
`summary.md` and each trained candidate's folder in `runs/`.
"""
import dataclasses
import json
import os

from absl import app
from absl import flags

import univision  # pylint: disable=unused-import  (sets the Keras mode)
import yaml

from univision.efficiency import hardware
from univision.efficiency import nas_log
from univision.efficiency import nas_loop
from univision.efficiency import nas_objective
from univision.efficiency import nas_proxy
from univision.efficiency import nas_space
from univision.modeling.backbones import mobilenet_v4_spec_file as spec_file
from univision.modeling.backbones import mobilenet_v4_specs as specs

BEST_SPEC = 'best_spec.yaml'


def check_settings(output_dir: str, settings: dict[str, object]) -> None:
  """Writes `search.json`, or refuses to resume a run with other settings."""
  path = os.path.join(output_dir, 'search.json')
  if os.path.exists(path):
    with open(path) as f:
      previous = json.load(f)
    changed = sorted(k for k in set(previous) | set(settings)
                     if previous.get(k) != settings.get(k))
    if changed:
      diffs = [f'{k}: {previous.get(k)!r} -> {settings.get(k)!r}'
               for k in changed]
      raise ValueError(f'{path}: this folder holds a search with other '
                       f'settings ({"; ".join(diffs)}); use another '
                       '--output_dir or delete it.')
    return
  os.makedirs(output_dir, exist_ok=True)
  with open(path, 'w') as f:
    json.dump(settings, f, indent=2)


def write_results(output_dir: str, space: nas_space.SearchSpace,
                  winners: dict[str, tuple[nas_space.Candidate,
                                           nas_log.Trial]],
                  settings: dict[str, object], recipe: str) -> str:
  """Writes the best spec, its recipe and the summary; the spec's path."""
  candidate, trial = winners[nas_space.FINE]
  spec_path = os.path.join(output_dir, BEST_SPEC)
  spec_file.write(space.to_model_spec(candidate), spec_path, header=(
      f'MobileNetV4 NAS winner {candidate.key}\n'
      f'reward {trial.reward:.4f}, proxy accuracy {trial.accuracy:.4f}, '
      f'{trial.mmacs:.1f} MMACs, roofline latency {trial.latency_ms:.4f} ms '
      f'on {settings["profile"]} at {space.resolution}px.\n'
      f'Written by univision.efficiency.nas_search; see {output_dir}/'
      'summary.md.'))
  with open(recipe) as f:
    text = f.read()
  header = ''.join(line + '\n' for line in text.splitlines()
                   if line.startswith('#'))
  config = yaml.safe_load(text)
  config['task']['model']['backbone']['mobilenet_v4'][
      nas_proxy.SPEC_FILE_KEY] = spec_path
  with open(os.path.join(output_dir, os.path.basename(recipe)), 'w') as f:
    f.write(header + yaml.safe_dump(config, sort_keys=False))
  trials = sorted(nas_log.read(os.path.join(output_dir, 'trials.csv')),
                  key=lambda t: t.index)
  with open(os.path.join(output_dir, 'summary.md'), 'w') as f:
    f.write(nas_log.summary_markdown(
        trials, {phase: t for phase, (_, t) in winners.items()}, settings))
  return spec_path


def _define_flags() -> None:
  flags.DEFINE_string('output_dir', None, 'Results folder.')
  flags.DEFINE_string('data', 'data/fashion_mnist',
                      'Fashion-MNIST TFRecord folder.')
  flags.DEFINE_string(
      'profile', 'edgetpu', 'Hardware profile of the latency model: a '
      f'bundled one ({", ".join(hardware.available_profiles())}) or a YAML '
      'file.')
  flags.DEFINE_integer('seed', 0, 'Seed of sampling and training.')
  flags.DEFINE_integer('coarse_trials', 3,
                       'Candidates trained in the coarse stage.')
  flags.DEFINE_integer('fine_trials', 4, 'Candidates trained in the fine '
                       'stage (the coarse winner included).')
  flags.DEFINE_integer('population', 2,
                       'Random candidates per stage before mutation starts.')
  flags.DEFINE_integer('proxy_steps', 200, 'Training steps per candidate.')
  flags.DEFINE_integer('proxy_resolution', 32,
                       'Training resolution of the proxy.')
  flags.DEFINE_integer('eval_batches', 10,
                       'Test batches (of 200) per candidate.')
  flags.DEFINE_integer('latency_resolution', 224,
                       'Resolution the latency is costed at.')
  flags.DEFINE_float(
      'target_latency_ms', 0.0,
      'Reward target; 0 = MNv4-Conv-S\'s roofline latency on the profile.')
  flags.DEFINE_float('latency_budget', 1.2,
                     'Hard limit as a multiple of the target (0: none).')
  flags.DEFINE_float('max_mmacs', 0.0,
                     'Hard MAC limit in millions (0: none).')
  flags.DEFINE_list('expand_ratios', ['2', '3', '4', '6'],
                    'Fine-stage expansion choices (4 = the paper).')
  flags.DEFINE_float('alpha', -0.07,
                     'Reward exponent at or under the target.')
  flags.DEFINE_float('beta', -0.07, 'Reward exponent over the target.')
  flags.mark_flags_as_required(['output_dir'])


def main(_):
  # The program entry point registers the experiments.
  from univision import registry_imports  # pylint: disable=g-import-not-at-top,unused-import
  f = flags.FLAGS
  output_dir = f.output_dir
  profile = hardware.load_profile(f.profile)
  space = nas_space.conv_small_space(
      f.latency_resolution, tuple(float(e) for e in f.expand_ratios))
  proxy = nas_proxy.ProxySettings(data=f.data, steps=f.proxy_steps,
                                  resolution=f.proxy_resolution,
                                  eval_batches=f.eval_batches,
                                  seed=f.seed)
  num_classes = nas_proxy.recipe_config(
      nas_proxy.RECIPE).task.model.num_classes

  def cost_fn(spec: specs.ModelSpec) -> nas_objective.Costs:
    return nas_objective.measure(spec, profile, num_classes)

  target_s = f.target_latency_ms / 1e3 or cost_fn(dataclasses.replace(
      specs.CONV_SMALL, resolution=space.resolution)).latency_s
  budget = nas_objective.Budget(
      max_macs=f.max_mmacs * 1e6 or None,
      max_latency_s=f.latency_budget * target_s or None)
  settings = {
      'profile': profile.name, 'seed': f.seed,
      'coarse_trials': f.coarse_trials, 'fine_trials': f.fine_trials,
      'population': f.population, 'data': proxy.data,
      'proxy_steps': proxy.steps, 'proxy_resolution': proxy.resolution,
      'eval_batches': proxy.eval_batches,
      'latency_resolution': space.resolution,
      'target_latency_ms': round(target_s * 1e3, 6),
      'max_latency_ms': round(budget.max_latency_s * 1e3, 6)
                        if budget.max_latency_s else None,
      'max_mmacs': f.max_mmacs or None,
      'expand_ratios': list(space.expand_ratios),
      'alpha': f.alpha, 'beta': f.beta}
  check_settings(output_dir, settings)
  search = nas_loop.Search(
      space, nas_loop.Objective(target_s, budget, f.alpha, f.beta),
      cost_fn, lambda spec, run_dir: nas_proxy.train_accuracy(
          spec, run_dir, proxy), output_dir, f.seed)
  winners = search.run(f.coarse_trials, f.fine_trials, f.population)
  spec_path = write_results(output_dir, space, winners, settings,
                            nas_proxy.RECIPE)
  print(f'Best spec: {spec_path}; trials and summary in {output_dir}.')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
