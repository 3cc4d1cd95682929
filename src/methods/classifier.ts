import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import type { Backbone } from '../backbones/contract.ts';
import type { TransformSet } from '../transforms/contract.ts';
import { expandImages } from '../transforms/expand.ts';
import { crossEntropy } from '../losses/cross-entropy.ts';
import { deriveSeed } from '../util/prng.ts';
import type { EpisodeImages } from '../episodes/images.ts';
import { aggregateJointLogits, identityRows, jointLabels, repeatLabels, singleInferenceLogits, transformLabels } from './aggregate.ts';
import { distillationKl, stopGradient } from './distill.ts';

/*
 * Standard (non-episodic) classification over all C base classes (issue 31 #1; docs/classification.md), with the
 * SLA wrappers of the paper's classification half (Lee et al. 2020, §2; the authors' trainers.py):
 * - plain: a C-way head on f(x), cross-entropy.
 * - sla: every image expanded to its M transformed copies (row b·M + j = t_j(x_b)); a C·M-way head on (class,
 *   transformation) with joint label y·M + j; loss CE over all copies (×M with slaLoss 'sum', the authors'
 *   --with-large-loss). Inference SLA+AG (mean over j of logit[t_j(x), (i, j)]) and SLA+SI (identity row, identity
 *   columns).
 * - sla-sd: sla plus a second, C-way "single" head on the identity copies' embeddings, trained with
 *   β·CE(single, y) + T²·KL(softmax(stopgrad(AG)/T) ‖ softmax(single/T)) (batchmean); inference 'sd' is the single
 *   head on the untransformed image (one pass), 'ag' and 'si' come from the joint head.
 * - da: the copies as data augmentation, each with its image's class label; plain inference.
 * - mt: da plus an M-way transformation-prediction head on the embedding (plain CE, summed); plain inference.
 *
 * A training batch travels through the episodic trainer as an EpisodeImages whose query set is the batch (labels:
 * class indices 0..C−1, way C) and whose support set is empty: the trainer's run folder, checkpoints, resume and
 * crash-safety are the episodic ones, one "episode" being one mini-batch step.
 */
export const CLASSIFIER_VARIANTS = ['plain', 'sla', 'sla-sd', 'da', 'mt'] as const;
export type ClassifierVariant = (typeof CLASSIFIER_VARIANTS)[number];
export const CLASSIFIER_HEADS = ['linear', 'cosine'] as const;
export type ClassifierHeadKind = (typeof CLASSIFIER_HEADS)[number];

export const classifierHeadSchema = z
  .object({
    kind: z.enum(CLASSIFIER_HEADS).default('linear'),
    /** Cosine head: logits = scale · cos(f(x), w_k); fixed, as Baseline++ (Chen et al. 2019). */
    scale: z.number().positive().default(10),
  })
  .strict();
export type ClassifierHeadConfig = z.infer<typeof classifierHeadSchema>;

let instance = 0;

/** A K-way linear (W, b; torch nn.Linear's U(±1/√d) init, seeded) or cosine (W only) head on embeddings [n, d]. */
export class ClassifierHead {
  readonly weight: tf.Variable;
  readonly bias?: tf.Variable;
  constructor(
    readonly key: string,
    readonly config: ClassifierHeadConfig,
    embeddingDim: number,
    readonly outputs: number,
    seed: number,
  ) {
    const bound = 1 / Math.sqrt(embeddingDim);
    const n = instance++;
    // Checkpoints key on the name before '#'; the suffix keeps tfjs variable names unique per process.
    this.weight = tf.variable(
      tf.randomUniform([embeddingDim, outputs], -bound, bound, 'float32', deriveSeed(seed, `${key}/weight`)),
      true,
      `${key}/weight#${n}`,
    );
    if (config.kind === 'linear')
      this.bias = tf.variable(tf.randomUniform([outputs], -bound, bound, 'float32', deriveSeed(seed, `${key}/bias`)), true, `${key}/bias#${n}`);
  }

  logits(embeddings: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      if (this.config.kind === 'linear') return tf.add(tf.matMul(embeddings, this.weight as tf.Tensor2D), this.bias!) as tf.Tensor2D;
      const z = tf.div(embeddings, tf.add(tf.norm(embeddings, 'euclidean', 1, true), 1e-8));
      const w = tf.div(this.weight, tf.add(tf.norm(this.weight, 'euclidean', 0, true), 1e-8));
      return tf.mul(tf.matMul(z, w as tf.Tensor2D), this.config.scale) as tf.Tensor2D;
    });
  }

  variables(): tf.Variable[] {
    return this.bias ? [this.weight, this.bias] : [this.weight];
  }
}

export const classifierOptionsSchema = z
  .object({
    slaLoss: z.enum(['mean', 'sum']).default('mean'),
    /** SLA+SD: weight β of CE(single, y) and distillation temperature T (the authors' defaults 1, 1). */
    beta: z.number().min(0).default(1),
    temperature: z.number().positive().default(1),
  })
  .strict();
export type ClassifierOptions = z.infer<typeof classifierOptionsSchema>;

export interface ClassifierSpec {
  variant: ClassifierVariant;
  backbone: Backbone;
  imageSize: number;
  classes: number;
  head: ClassifierHeadConfig;
  /** The transform set (plain: unused, may be the identity set). */
  transformSet: TransformSet;
  options: ClassifierOptions;
  seed: number;
}

/** Inference modes per variant; the first is the headline one. */
export function classifierModes(variant: ClassifierVariant): string[] {
  return variant === 'sla' ? ['ag', 'si'] : variant === 'sla-sd' ? ['sd', 'ag', 'si'] : ['plain'];
}

/** A classifier over all classes of a split: a backbone plus a linear or cosine head, trained with mini-batches. */
export class ClassifierMethod {
  readonly id: string;
  readonly backbone: Backbone;
  readonly variant: ClassifierVariant;
  readonly classes: number;
  readonly inferenceModes: readonly string[];
  /** C-way (plain, da, mt) or C·M-way (sla, sla-sd) head. */
  readonly head: ClassifierHead;
  /** SLA+SD's C-way head on the untransformed embedding. */
  readonly singleHead?: ClassifierHead;
  /** MT's M-way transformation head (always linear). */
  readonly transformHead?: ClassifierHead;
  readonly transformSet: TransformSet;
  readonly options: ClassifierOptions;

  constructor(spec: ClassifierSpec) {
    const { variant, backbone, imageSize, classes, seed } = spec;
    this.variant = variant;
    this.backbone = backbone;
    this.classes = classes;
    this.transformSet = spec.transformSet;
    this.options = spec.options;
    this.id = `classifier-${variant}`;
    this.inferenceModes = classifierModes(variant);
    const d = backbone.embeddingDim(imageSize);
    const m = this.transformCount;
    this.head = new ClassifierHead('classifier/head', spec.head, d, this.isJoint ? classes * m : classes, seed);
    if (variant === 'sla-sd') this.singleHead = new ClassifierHead('classifier/single_head', spec.head, d, classes, seed);
    if (variant === 'mt') this.transformHead = new ClassifierHead('classifier/transform_head', { kind: 'linear', scale: 1 }, d, m, seed);
  }

  /** M, the transformations including the identity (1 for plain). */
  get transformCount(): number {
    return this.variant === 'plain' ? 1 : this.transformSet.transforms.length;
  }

  /** Whether the head is on (class, transformation) pairs. */
  get isJoint(): boolean {
    return this.variant === 'sla' || this.variant === 'sla-sd';
  }

  /** The embedding f(x) [B, d] of untransformed images, backbone in eval mode (the pre-trained embedding). */
  embed(images: tf.Tensor4D): tf.Tensor2D {
    return this.backbone.apply(images, false);
  }

  /** Images [B, …] → expanded copies [B·M, …] (plain: the images themselves). */
  private expand(images: tf.Tensor4D): tf.Tensor4D {
    return this.variant === 'plain' ? images : expandImages(this.transformSet, images);
  }

  /**
   * Joint logits [B·M, C·M] of the expanded images (sla, sla-sd only; for SLA-based OOD scores). Row b·M + j is
   * t_j(x_b), column i·M + l is (class i, transformation l). Call inside tidy; eval mode.
   */
  jointLogits(images: tf.Tensor4D): tf.Tensor2D {
    if (!this.isJoint) throw new Error(`${this.id} has no joint (class × transformation) head`);
    return this.head.logits(this.backbone.apply(this.expand(images), false));
  }

  trainLoss(batch: EpisodeImages): tf.Scalar {
    return tf.tidy(() => {
      const m = this.transformCount;
      const labels = batch.queryLabels;
      const z = this.backbone.apply(this.expand(batch.queryImages), true);
      const logits = this.head.logits(z);
      switch (this.variant) {
        case 'plain':
          return crossEntropy(logits, labels);
        case 'da':
          return crossEntropy(logits, repeatLabels(labels, m));
        case 'mt':
          return tf.add(
            crossEntropy(logits, repeatLabels(labels, m)),
            crossEntropy(this.transformHead!.logits(z), transformLabels(labels.length, m)),
          ) as tf.Scalar;
        case 'sla':
          return this.jointLoss(logits, labels);
        case 'sla-sd': {
          const { beta, temperature } = this.options;
          const single = this.singleHead!.logits(identityRows(z, m));
          const teacher = stopGradient(aggregateJointLogits(logits, m));
          return tf.addN([
            this.jointLoss(logits, labels),
            tf.mul(crossEntropy(single, labels), beta),
            distillationKl(teacher, single, temperature),
          ]) as tf.Scalar;
        }
      }
    });
  }

  private jointLoss(logits: tf.Tensor2D, labels: Int32Array): tf.Scalar {
    const m = this.transformCount;
    const loss = crossEntropy(logits, jointLabels(labels, m));
    return this.options.slaLoss === 'sum' ? tf.mul(loss, m) : loss;
  }

  /** C-way scores [B, C] per inference mode for untransformed images [B, S, S, 3]; eval mode. */
  scores(images: tf.Tensor4D): Record<string, tf.Tensor2D> {
    return tf.tidy(() => {
      const m = this.transformCount;
      if (!this.isJoint) return { plain: this.head.logits(this.embed(images)) };
      const z = this.backbone.apply(this.expand(images), false);
      const joint = this.head.logits(z);
      const out: Record<string, tf.Tensor2D> = { ag: aggregateJointLogits(joint, m), si: singleInferenceLogits(joint, m) };
      // Identity rows of the expanded pass equal a pass over the untransformed images (eval mode: running stats).
      if (this.singleHead) out.sd = this.singleHead.logits(identityRows(z, m));
      return out;
    });
  }

  /** The episodic-method form the trainer's validation would call: scores of the batch in `queryImages`. */
  predict(batch: EpisodeImages): Record<string, tf.Tensor2D> {
    return this.scores(batch.queryImages);
  }

  trainableVariables(): tf.Variable[] {
    return [
      ...this.backbone.trainableVariables(),
      ...this.head.variables(),
      ...(this.singleHead?.variables() ?? []),
      ...(this.transformHead?.variables() ?? []),
    ];
  }

  stateVariables(): tf.Variable[] {
    return this.backbone.stateVariables();
  }

  describe(): Record<string, unknown> {
    return {
      variant: this.variant,
      backbone: this.backbone.id,
      head: this.head.config,
      classes: this.classes,
      outputs: this.head.outputs,
      transform: this.variant === 'plain' ? undefined : this.transformSet.name,
      transformCount: this.transformCount,
      inferenceModes: [...this.inferenceModes],
      ...(this.isJoint ? { slaLoss: this.options.slaLoss } : {}),
      ...(this.variant === 'sla-sd' ? { beta: this.options.beta, temperature: this.options.temperature } : {}),
    };
  }
}
