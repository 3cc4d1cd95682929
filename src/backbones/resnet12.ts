import * as tf from '@tensorflow/tfjs-core';
import type { Backbone, BackboneFactory, FastWeights } from './contract.ts';
import { BatchNorm, Conv2d } from './layers.ts';
import { addActPool } from '../backend/wasm/add_act_pool.ts';
import { dropBlock, dropBlockGamma, dropBlockKeepRate } from './dropblock.ts';
import { UserError } from '../util/errors.ts';

/**
 * ResNet-12 as in MetaOptNet (docs/reference.md §4.5, models/ResNet12_embedding.py): four residual blocks of widths
 * 64-160-320-640 ('narrow': 32-80-160-320, for CPU budgets). Each block: three [3×3 conv (no bias), batch norm]
 * with LeakyReLU(0.1) after the first two, plus a shortcut [1×1 conv (no bias), batch norm]; add, LeakyReLU(0.1),
 * 2×2 max-pool. Then, in training only: dropout 0.1 after blocks 1–2, DropBlock after blocks 3–4 (block size 5,
 * or 2 for inputs ≤ 32 px as MetaOptNet uses for CIFAR-FS/FC100) with MetaOptNet's keep-rate ramp
 * keep = max(1 − 0.1·t/40,000, 0.9). No global pooling: the flattened map is the embedding
 * (16,000-d at 84 px, 2,560-d at 32 px; narrow: 8,000 / 1,280).
 *
 * Deviations, deliberately: t counts this backbone's training-mode forward calls (one per episode in our trainer),
 * whereas the reference counts every forward call of the block (8-episode batches plus validation episodes);
 * under the MetaOptNet protocol both ramps end long before the first learning-rate drop. The counter is a state
 * variable, so it is checkpointed and a resumed run continues the schedule. Dropout and DropBlock masks are drawn
 * from seeded generators keyed by (seed, block, t), so training is reproducible.
 */

export type ResNet12Variant = 'standard' | 'narrow';
export const RESNET12_WIDTHS: Record<ResNet12Variant, readonly [number, number, number, number]> = {
  standard: [64, 160, 320, 640],
  narrow: [32, 80, 160, 320],
};

export interface ResNet12Options {
  seed: number;
  imageSize: number;
  variant?: ResNet12Variant;
  /** Dropout rate of blocks 1–2 and final drop rate of DropBlock in blocks 3–4 (MetaOptNet: 0.1). */
  dropRate?: number;
  /** DropBlock block size (default: 5, or 2 for inputs ≤ 32 px). */
  dropBlockSize?: number;
  /** Training forward calls over which DropBlock's keep rate ramps from 1 to 1 − dropRate (MetaOptNet: 40,000). */
  keepRateRampCalls?: number;
}

const LEAK = 0.1;

class ResidualBlock {
  readonly convs: Conv2d[];
  readonly norms: BatchNorm[];
  readonly shortcutConv: Conv2d;
  readonly shortcutNorm: BatchNorm;
  constructor(path: string, inChannels: number, outChannels: number, seed: number) {
    this.convs = [0, 1, 2].map((k) => new Conv2d(`${path}/conv${k + 1}`, k === 0 ? inChannels : outChannels, outChannels, 3, { seed }));
    this.norms = [0, 1, 2].map((k) => new BatchNorm(`${path}/bn${k + 1}`, outChannels));
    this.shortcutConv = new Conv2d(`${path}/shortcut/conv`, inChannels, outChannels, 1, { seed });
    this.shortcutNorm = new BatchNorm(`${path}/shortcut/bn`, outChannels);
  }
  apply(x: tf.Tensor4D, training: boolean, params?: FastWeights): tf.Tensor4D {
    const residual = this.shortcutNorm.apply(this.shortcutConv.apply(x, params), training, 'linear', undefined, params);
    let out = this.norms[0].apply(this.convs[0].apply(x, params), training, 'leakyRelu', LEAK, params);
    out = this.norms[1].apply(this.convs[1].apply(out, params), training, 'leakyRelu', LEAK, params);
    out = this.norms[2].apply(this.convs[2].apply(out, params), training, 'linear', undefined, params);
    // maxPool(leakyRelu(out + residual)): one native op each way with the oneDNN accelerator, else composed.
    return addActPool(out, residual, LEAK);
  }
  variables(): tf.Variable[] {
    return [
      ...this.convs.flatMap((c) => c.variables()),
      ...this.norms.flatMap((n) => n.variables()),
      ...this.shortcutConv.variables(),
      ...this.shortcutNorm.variables(),
    ];
  }
  state(): tf.Variable[] {
    return [...this.norms.flatMap((n) => n.state()), ...this.shortcutNorm.state()];
  }
}

let counterName = 0;
export class ResNet12 implements Backbone {
  readonly id: string;
  readonly widths: readonly [number, number, number, number];
  readonly dropRate: number;
  readonly dropBlockSize: number;
  readonly keepRateRampCalls: number;
  private readonly blocks: ResidualBlock[] = [];
  /** Training-mode forward calls so far (float32 scalar state, checkpointed). */
  readonly trainingCalls: tf.Variable;
  private readonly seed: number;
  constructor(readonly options: ResNet12Options) {
    const variant = options.variant ?? 'standard';
    this.id = variant === 'standard' ? 'resnet12' : `resnet12-${variant}`;
    this.widths = RESNET12_WIDTHS[variant];
    this.seed = options.seed;
    this.dropRate = options.dropRate ?? 0.1;
    this.dropBlockSize = options.dropBlockSize ?? (options.imageSize <= 32 ? 2 : 5);
    this.keepRateRampCalls = options.keepRateRampCalls ?? 20 * 2000;
    if (options.imageSize < 16) {
      throw new UserError(`ResNet-12 needs images of at least 16 px (four 2×2 poolings), got ${options.imageSize}`, 'use --image-size 32 or larger');
    }
    let inChannels = 3;
    this.widths.forEach((w, i) => {
      this.blocks.push(new ResidualBlock(`resnet12/block${i + 1}`, inChannels, w, options.seed));
      inChannels = w;
    });
    this.trainingCalls = tf.variable(tf.scalar(0), false, `resnet12/training_calls#r${counterName++}`);
  }

  apply(images: tf.Tensor4D, training: boolean, params?: FastWeights): tf.Tensor2D {
    const t = training ? this.trainingCalls.dataSync()[0] : 0;
    const out = tf.tidy(() => {
      let x = images;
      this.blocks.forEach((block, i) => {
        x = block.apply(x, training, params);
        if (!training || this.dropRate <= 0) return;
        const maskSeed = `resnet12:${this.seed}:${i}:${t}`;
        if (i < 2) {
          x = tf.dropout(x, this.dropRate, undefined, maskSeed) as tf.Tensor4D;
        } else {
          const size = Math.min(this.dropBlockSize, x.shape[1], x.shape[2]);
          const keepRate = dropBlockKeepRate(t + 1, this.dropRate, this.keepRateRampCalls);
          x = dropBlock(x, size, dropBlockGamma(keepRate, size, x.shape[1]), maskSeed);
        }
      });
      return tf.reshape(x, [x.shape[0], -1]) as tf.Tensor2D;
    });
    if (training) this.trainingCalls.assign(tf.scalar(t + 1));
    return out;
  }

  /** DropBlock's keep rate for the next training call (1 at the start, 1 − dropRate after the ramp). */
  currentKeepRate(): number {
    return dropBlockKeepRate(this.trainingCalls.dataSync()[0] + 1, this.dropRate, this.keepRateRampCalls);
  }

  trainableVariables(): tf.Variable[] {
    return this.blocks.flatMap((b) => b.variables());
  }
  stateVariables(): tf.Variable[] {
    return [...this.blocks.flatMap((b) => b.state()), this.trainingCalls];
  }
  embeddingDim(imageSize: number): number {
    let s = imageSize;
    for (let i = 0; i < 4; i++) s = Math.floor(s / 2);
    return s * s * this.widths[3];
  }
}

function variantOf(variant: string | undefined, fallback: ResNet12Variant): ResNet12Variant {
  const v = variant ?? fallback;
  if (v !== 'standard' && v !== 'narrow')
    throw new UserError(`unknown ResNet-12 variant "${v}"`, 'use "standard" (64-160-320-640) or "narrow" (32-80-160-320)');
  return v;
}

export const resnet12Factory: BackboneFactory = {
  id: 'resnet12',
  description: 'ResNet-12 (MetaOptNet): 64-160-320-640, LeakyReLU, dropout + DropBlock, no global pooling (16,000-d at 84 px)',
  create: ({ imageSize, seed, variant }) => new ResNet12({ imageSize, seed, variant: variantOf(variant, 'standard') }),
};

export const resnet12NarrowFactory: BackboneFactory = {
  id: 'resnet12-narrow',
  description: 'ResNet-12 at half width, 32-80-160-320, for CPU budgets (8,000-d at 84 px, 1,280-d at 32 px)',
  create: ({ imageSize, seed }) => new ResNet12({ imageSize, seed, variant: 'narrow' }),
};
