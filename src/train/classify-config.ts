import { z } from 'zod';
import { trainConfigSchema } from './config.ts';
import { CLASSIFIER_VARIANTS, classifierHeadSchema, classifierOptionsSchema } from '../methods/classifier.ts';
import type { TrainerConfig } from './trainer.ts';

/**
 * A classification run (issue 31 #1, #2; docs/classification.md): mini-batches over all classes of one split of a
 * provider, a fixed seeded hold-out of each class as the test set, optionally a long-tailed training set. The
 * schedule is in epochs; the trainer sees steps (one mini-batch = one of its "episodes").
 */
const stepSchedule = z.object({ type: z.literal('step'), everyEpochs: z.number().int().positive(), factor: z.number().positive() }).strict();
const piecewiseSchedule = z
  .object({ type: z.literal('piecewise'), boundaries: z.array(z.number().int().positive()), factors: z.array(z.number().positive()) })
  .strict()
  .refine((s) => s.factors.length === s.boundaries.length + 1, 'piecewise schedule needs factors.length = boundaries.length + 1');
const constantSchedule = z.object({ type: z.literal('constant') }).strict();

export const classifyConfigSchema = z
  .object({
    kind: z.literal('classification').default('classification'),
    /** plain | sla | sla-sd | da | mt (methods/classifier.ts). */
    variant: z.enum(CLASSIFIER_VARIANTS).default('plain'),
    head: classifierHeadSchema.default({ kind: 'linear', scale: 10 }),
    backbone: z.string().default('conv4'),
    imageSize: z.number().int().min(8).default(84),
    /** SLA / DA / MT transform set (ignored by plain). */
    transform: z.string().default('rotation'),
    options: classifierOptionsSchema.default({ slaLoss: 'mean', beta: 1, temperature: 1 }),
    epochs: z.number().int().positive().default(10),
    batchSize: z.number().int().positive().default(64),
    optimizer: trainConfigSchema.shape.optimizer,
    lrSchedule: z.union([stepSchedule, piecewiseSchedule, constantSchedule]).default({ type: 'constant' }),
    /** Which split of the provider is the labelled dataset (mini-ImageNet's 64 base classes: train). */
    split: z.enum(['train', 'val', 'test']).default('train'),
    /** Images of each class held out as the test set (fixed by the seed). */
    testPerClass: z.number().int().positive().default(100),
    /** n_max / n_min of the training set, exponential profile (1: balanced). Below 1 is refused with a UserError. */
    imbalanceRatio: z.number().default(1),
    seed: z.number().int().min(0).default(0),
    dataset: z.string().min(1).default('mini-imagenet'),
    datasetOptions: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

export type ClassifyConfig = z.infer<typeof classifyConfigSchema>;
export type ClassifyConfigInput = z.input<typeof classifyConfigSchema>;

/** The trainer's view of a classification run with `stepsPerEpoch` steps an epoch (schedule in steps, no validation). */
export function trainerConfigOf(config: ClassifyConfig, stepsPerEpoch: number): TrainerConfig {
  const s = config.lrSchedule;
  const lrSchedule: TrainerConfig['lrSchedule'] =
    s.type === 'step'
      ? { type: 'step', everyEpisodes: s.everyEpochs * stepsPerEpoch, factor: s.factor }
      : s.type === 'piecewise'
        ? { type: 'piecewise', boundaries: s.boundaries.map((b) => b * stepsPerEpoch), factors: s.factors }
        : s;
  return { episodes: config.epochs * stepsPerEpoch, episodesPerStep: 1, optimizer: config.optimizer, lrSchedule, validation: { every: 0, episodes: 1 } };
}
