"""The NAS search loop: coarse then fine stage, every candidate logged.

MobileNetV4 (arXiv 2404.10518, Sec. 5) searches coarse (filters per stage,
every block an IB with expansion 4 and a 3x3 DW) then fine (each UIB's
optional DWs and expansion, filters fixed at the coarse winner's). The paper
trains a TuNAS supernet; at this scale each candidate is trained alone, so
each stage is a small evolutionary search with a fixed budget of trained
candidates: `population` random ones, then mutants of the best of a random
tournament of three (a random one instead of a mutant already seen). The
fine stage starts from the coarse winner itself.

Every candidate is first checked against the space (`nas_space`), then
costed and checked against the hard budget (`nas_objective.Budget`); a
rejected candidate is logged and never trained, and does not use up a
trial. A trained one's reward is `nas_objective.reward`. Sampling is seeded:
the same seed and the same accuracies give the same candidates in the same
order, which is also how a restarted search replays its log (`nas_log`).
"""
import dataclasses
import os
import random
import time
from typing import Callable

from univision.efficiency import nas_log
from univision.efficiency import nas_objective
from univision.efficiency import nas_space
from univision.modeling.backbones import mobilenet_v4_specs as specs
from univision.studies import runs

CostFn = Callable[[specs.ModelSpec], nas_objective.Costs]
ProxyFn = Callable[[specs.ModelSpec, str], float]
_TOURNAMENT = 3
_MAX_DRAWS_PER_TRIAL = 20  # Draws (repeats and rejections) before giving up.


@dataclasses.dataclass(frozen=True)
class Objective:
  """The hard budget and the reward's latency target and exponents."""
  target_latency_s: float
  budget: nas_objective.Budget = nas_objective.Budget()
  alpha: float = -0.07
  beta: float = -0.07


class Search:
  """Runs the coarse and fine stages, logging every candidate."""

  def __init__(self, space: nas_space.SearchSpace, objective: Objective,
               cost_fn: CostFn, proxy_fn: ProxyFn, output_dir: str,
               seed: int = 0):
    """Sets up the search and replays the log of a previous run, if any.

    Args:
      space: The search space.
      objective: Budget and reward settings.
      cost_fn: Costs of a block-spec table (`nas_objective.measure`).
      proxy_fn: Accuracy proxy: trains a table in a folder, returns [0, 1].
      output_dir: Where the log, runs and results go.
      seed: Seed of the candidate sampling.
    """
    self.space = space
    self.objective = objective
    self.cost_fn = cost_fn
    self.proxy_fn = proxy_fn
    self.output_dir = output_dir
    self.seed = seed
    self.log_path = os.path.join(output_dir, 'trials.csv')
    os.makedirs(output_dir, exist_ok=True)
    self.trials = {t.key: t for t in nas_log.read(self.log_path)}
    self._progress = None  # Set by `run`, which knows how many train.

  def evaluate(self, phase: str, candidate: nas_space.Candidate
               ) -> nas_log.Trial:
    """The logged trial of `candidate`; checks, costs and trains it if new."""
    if candidate.key in self.trials:
      return self.trials[candidate.key]
    start = time.time()
    row = {'index': len(self.trials), 'phase': phase, 'key': candidate.key}
    problems = self.space.check(candidate)
    if problems:
      trial = nas_log.Trial(status=nas_log.REJECTED,
                            reason='; '.join(problems), **row)
    else:
      spec = self.space.to_model_spec(candidate)
      costs = self.cost_fn(spec)
      row.update(mmacs=costs.macs / 1e6, params=costs.params,
                 latency_ms=costs.latency_s * 1e3)
      over = self.objective.budget.violations(costs)
      if over:
        trial = nas_log.Trial(status=nas_log.REJECTED,
                              reason='; '.join(over), **row)
      else:
        accuracy = float(self.proxy_fn(
            spec, os.path.join(self.output_dir, 'runs', candidate.key)))
        trial = nas_log.Trial(
            status=nas_log.TRAINED, accuracy=accuracy,
            reward=nas_objective.reward(
                accuracy, costs.latency_s, self.objective.target_latency_s,
                self.objective.alpha, self.objective.beta), **row)
    trial = dataclasses.replace(trial, seconds=time.time() - start)
    nas_log.append(self.log_path, trial)
    self.trials[candidate.key] = trial
    if self._progress and trial.status == nas_log.TRAINED:
      self._progress.finish(f'{phase} {candidate.key}', {
          'accuracy': trial.accuracy, 'reward': trial.reward})
    return trial

  def run_phase(self, phase: str, trials: int, population: int,
                base: nas_space.Candidate | None = None
                ) -> list[tuple[nas_space.Candidate, nas_log.Trial]]:
    """Trains `trials` distinct candidates of `phase` that meet the budget.

    Args:
      phase: `coarse` or `fine`.
      trials: How many candidates to train (rejections do not count).
      population: How many of them are random; the rest are mutants.
      base: The coarse winner (fine stage only; it is the first trial).

    Returns:
      The trained candidates and their trials, in search order.

    Raises:
      RuntimeError: if `trials` candidates within the budget are not found
        in `trials * 20` draws.
    """
    rng = random.Random(f'{self.seed}/{phase}')
    trained, seen = [], set()
    draws = 0
    while len(trained) < trials:
      if draws >= trials * _MAX_DRAWS_PER_TRIAL:
        raise RuntimeError(
            f'{phase} stage: only {len(trained)} of {trials} candidates met '
            f'the budget {self.objective.budget} in {draws} draws; loosen '
            'the budget or the space.')
      draws += 1
      if phase == nas_space.FINE and draws == 1:
        candidate = base
      elif len(trained) < population:
        candidate = self.space.sample(phase, rng, base)
      else:
        parents = rng.sample(trained, min(_TOURNAMENT, len(trained)))
        parent = max(parents, key=lambda p: p[1].reward)[0]
        candidate = self.space.mutate(phase, parent, rng)
        if candidate.key in seen:  # The parent's neighbours may run out.
          candidate = self.space.sample(phase, rng, base)
      if candidate.key in seen:
        continue
      seen.add(candidate.key)
      trial = self.evaluate(phase, candidate)
      if trial.status == nas_log.TRAINED:
        trained.append((candidate, trial))
    return trained

  def run(self, coarse_trials: int, fine_trials: int, population: int
          ) -> dict[str, tuple[nas_space.Candidate, nas_log.Trial]]:
    """Both stages; the winner (highest reward) of each.

    Logs a progress line as each candidate finishes training; candidates
    trained before a restart count as done. The fine stage's first trial is
    the coarse winner, so `coarse_trials + fine_trials - 1` train in all.
    """
    trained = sum(t.status == nas_log.TRAINED for t in self.trials.values())
    self._progress = runs.RunProgress(coarse_trials + fine_trials - 1,
                                      trained, 'nas trial')
    winners = {}
    base = None
    for phase, trials in ((nas_space.COARSE, coarse_trials),
                          (nas_space.FINE, fine_trials)):
      found = self.run_phase(phase, trials, population, base)
      winners[phase] = max(found, key=lambda pair: pair[1].reward)
      base = winners[phase][0]
    return winners

