import type { TrainConfig } from './config.ts';

/** Learning rate in force for the optimizer step that starts at training episode `episode` (0-based). */
export function learningRateAt(config: Pick<TrainConfig, 'optimizer' | 'lrSchedule'>, episode: number): number {
  const base = config.optimizer.lr;
  const s = config.lrSchedule;
  switch (s.type) {
    case 'constant':
      return base;
    case 'step':
      return base * s.factor ** Math.floor(episode / s.everyEpisodes);
    case 'piecewise': {
      let i = 0;
      while (i < s.boundaries.length && episode >= s.boundaries[i]) i++;
      return base * s.factors[i];
    }
  }
}
