import { z } from 'zod';
import { episodeSpecSchema } from '../episodes/spec.ts';

/**
 * Everything that defines a training run. Experiment files in `experiments/*.json` are this schema;
 * CLI flags override individual fields. The resolved config is recorded in checkpoints and results.
 */
export { episodeSpecSchema };

const adam = z.object({ type: z.literal('adam'), lr: z.number().positive().default(1e-3), weightDecay: z.number().min(0).default(0) }).strict();
const sgd = z
  .object({
    type: z.literal('sgd'),
    lr: z.number().positive().default(0.1),
    momentum: z.number().min(0).max(1).default(0.9),
    nesterov: z.boolean().default(true),
    weightDecay: z.number().min(0).default(5e-4),
  })
  .strict();

/** LR multipliers as a function of the training episode index (not the optimizer step). */
const stepSchedule = z.object({ type: z.literal('step'), everyEpisodes: z.number().int().positive(), factor: z.number().positive() }).strict();
const piecewiseSchedule = z
  .object({
    type: z.literal('piecewise'),
    /** Episode indices where the multiplier changes; factors has one more entry than boundaries. */
    boundaries: z.array(z.number().int().positive()),
    factors: z.array(z.number().positive()),
  })
  .strict()
  .refine((s) => s.factors.length === s.boundaries.length + 1, 'piecewise schedule needs factors.length = boundaries.length + 1');
const constantSchedule = z.object({ type: z.literal('constant') }).strict();

export const trainConfigSchema = z
  .object({
    method: z.string(),
    backbone: z.string().default('conv4'),
    imageSize: z.number().int().min(8).default(84),
    train: episodeSpecSchema,
    /** The evaluation task (val episodes for model selection, test episodes for the final number). */
    test: episodeSpecSchema,
    /** Total meta-training episodes. */
    episodes: z.number().int().positive(),
    /** Episodes averaged into one optimizer step (MetaOptNet: 8). */
    episodesPerStep: z.number().int().positive().default(1),
    optimizer: z.discriminatedUnion('type', [adam, sgd]).default({ type: 'adam', lr: 1e-3, weightDecay: 0 }),
    lrSchedule: z.union([stepSchedule, piecewiseSchedule, constantSchedule]).default({ type: 'step', everyEpisodes: 2000, factor: 0.5 }),
    /** Training-time image augmentation: none (ProtoNet paper) or MetaOptNet's crop + colour jitter + flip. */
    augment: z.enum(['none', 'metaoptnet']).default('none'),
    validation: z
      .object({
        /** Validate every this many training episodes (0: only at the end). */
        every: z.number().int().min(0).default(1000),
        /** How many episodes of the val file to use. */
        episodes: z.number().int().positive().default(500),
        /** Which inference mode selects the best checkpoint (default: the method's headline mode). */
        mode: z.string().optional(),
      })
      .strict()
      .default({ every: 1000, episodes: 500 }),
    headConfig: z.record(z.string(), z.unknown()).default({}),
    wrapperOptions: z.record(z.string(), z.unknown()).default({}),
    seed: z.number().int().min(0).default(0),
    /** Dataset provider id (`fewshot list` shows them; plugins add more). */
    dataset: z.string().min(1).default('mini-imagenet'),
    /** The provider's options (validated strictly by the provider's own schema). */
    datasetOptions: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

/** A validated experiment config (method, backbone, shapes, schedule, validation, dataset). */
export type TrainConfig = z.infer<typeof trainConfigSchema>;
