import { formatCI } from '../eval/stats.ts';
import type { TrainConfig } from '../train/config.ts';
import { validationsLeft, type TrainProgress } from '../train/trainer.ts';
import type { ExperimentReporter, ProgressHandle } from './reporter.ts';

/**
 * The training's progress bar: loss, last validation and learning rate, and an ETA whose training rate leaves the
 * validation time out (it is added back per validation still to come). The bar starts with the first trained
 * episode, so a run refused before training prints no progress.
 */
export function trainingProgress(reporter: ExperimentReporter, config: TrainConfig): { onProgress(p: TrainProgress): void; stop(): void } {
  const startedAt = performance.now();
  let progress: ProgressHandle | undefined;
  let lastLoss = '';
  let lastVal = '';
  let validationSeconds = 0;
  let validations = 0;
  return {
    onProgress(p) {
      if (p.loss !== undefined) lastLoss = p.loss.toFixed(4);
      if (p.validation) {
        lastVal = `${formatCI(p.validation.accuracy)}${p.validation.best ? '*' : ''}`;
        validationSeconds += p.validation.seconds;
        validations++;
      }
      progress ??= reporter.progress('train', config.episodes, { from: p.from, startedAt });
      const perValidation = validations ? validationSeconds / validations : 0;
      progress.update(
        p.episode,
        { loss: lastLoss, val: lastVal || '-', lr: p.lr.toExponential(2) },
        { spentSeconds: validationSeconds, pendingSeconds: perValidation * validationsLeft(config, p.episode) },
      );
    },
    stop: () => progress?.stop(),
  };
}
