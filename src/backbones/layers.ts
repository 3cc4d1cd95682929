import * as tf from '@tensorflow/tfjs-core';
import '../tf-gradients.ts';
import { batchNormTraining, type BatchNormActivation } from '../backend/wasm/batch_norm.ts';
import { batchNormActPool, batchNormActPoolInference } from '../backend/wasm/batch_norm_pool.ts';
import type { FastWeights } from './contract.ts';
import { deriveSeed } from '../util/prng.ts';

/**
 * Minimal functional layers on tfjs-core (no tfjs-layers: we need direct control of variables for
 * episodic meta-learning, checkpointing and batch-norm state). Each layer owns named tf.Variables.
 */

/** The tensor standing for variable `v` in this forward pass: its fast weight if given, else the variable. */
export function param<T extends tf.Tensor>(v: tf.Variable, params?: FastWeights): T {
  return (params?.get(v) ?? v) as unknown as T;
}

let nameCounter = 0;
/** Variable names must be unique per process in tfjs; checkpoints key on the `path` part before '#'. */
function uniqueName(path: string): string {
  return `${path}#${nameCounter++}`;
}

/** The stable name a variable is checkpointed under (its path without the process-unique suffix). */
export function checkpointKey(v: tf.Variable): string {
  return v.name.split('#')[0];
}

export class Conv2d {
  readonly filter: tf.Variable;
  readonly bias?: tf.Variable;
  constructor(
    path: string,
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    /** `seed` is the run seed: the filter's own seed is derived from (seed, path), see deriveSeed. */
    opts: { seed: number; stride?: number; bias?: boolean; init?: 'he-fan-out' },
  ) {
    this.stride = opts.stride ?? 1;
    // He/Kaiming normal with fan-out, as in the reference Conv-4 / ResNet-12: std = sqrt(2 / (k*k*out)).
    const std = Math.sqrt(2 / (kernelSize * kernelSize * outChannels));
    // tf.tidy disposes the initial-value tensors; the variables survive (tidy never disposes variables).
    this.filter = tf.tidy(() =>
      tf.variable(
        tf.randomNormal([kernelSize, kernelSize, inChannels, outChannels], 0, std, 'float32', deriveSeed(opts.seed, `${path}/filter`)),
        true,
        uniqueName(`${path}/filter`),
      ),
    );
    if (opts.bias) this.bias = tf.tidy(() => tf.variable(tf.zeros([outChannels]), true, uniqueName(`${path}/bias`)));
  }
  readonly stride: number;
  apply(x: tf.Tensor4D, params?: FastWeights): tf.Tensor4D {
    const y = tf.conv2d(x, param<tf.Tensor4D>(this.filter, params), this.stride, 'same');
    return this.bias ? tf.add(y, param(this.bias, params)) : y;
  }
  variables(): tf.Variable[] {
    return this.bias ? [this.filter, this.bias] : [this.filter];
  }
}

/**
 * Batch normalisation over N, H, W (NHWC), PyTorch conventions: eps 1e-5, running stats updated with
 * momentum 0.1 using the unbiased batch variance, batch statistics in training mode.
 */
export class BatchNorm {
  readonly gamma: tf.Variable;
  readonly beta: tf.Variable;
  readonly runningMean: tf.Variable;
  readonly runningVar: tf.Variable;
  constructor(
    path: string,
    readonly channels: number,
    readonly momentum = 0.1,
    readonly eps = 1e-5,
  ) {
    [this.gamma, this.beta, this.runningMean, this.runningVar] = tf.tidy(() => [
      tf.variable(tf.ones([channels]), true, uniqueName(`${path}/gamma`)),
      tf.variable(tf.zeros([channels]), true, uniqueName(`${path}/beta`)),
      tf.variable(tf.zeros([channels]), false, uniqueName(`${path}/running_mean`)),
      tf.variable(tf.ones([channels]), false, uniqueName(`${path}/running_var`)),
    ]);
  }
  /**
   * Normalise (batch statistics when training, running statistics otherwise), then apply `activation`.
   * Training uses the fused batch-norm(+activation) op: one kernel and one gradient kernel instead of the
   * ~25 ops tf.moments + tf.batchNorm compose into (half of a Conv-4 step on wasm); on backends without the
   * fused kernel it falls back to that composition with identical values.
   */
  apply(x: tf.Tensor4D, training: boolean, activation: BatchNormActivation = 'linear', alpha = 0.1, params?: FastWeights): tf.Tensor4D {
    const gamma = param<tf.Tensor1D>(this.gamma, params);
    const beta = param<tf.Tensor1D>(this.beta, params);
    if (!training) {
      return tf.tidy(() => {
        const y = tf.batchNorm4d(x, this.runningMean as tf.Tensor1D, this.runningVar as tf.Tensor1D, beta, gamma, this.eps);
        return activation === 'relu' ? tf.relu(y) : activation === 'leakyRelu' ? tf.leakyRelu(y, alpha) : y;
      });
    }
    const { y, mean, variance } = batchNormTraining(x, gamma, beta, { varianceEpsilon: this.eps, activation, alpha });
    this.updateRunningStats(mean, variance, x.shape[0] * x.shape[1] * x.shape[2]);
    return y;
  }

  /**
   * `apply` followed by a 2×2 max-pool (stride 2, 'valid'). Training runs the fused batch-norm + activation +
   * pool op (batch_norm_pool.ts), which never stores the full-size activation (1.4 GB less at the peak of an
   * 84 px SLA 5-shot step); values equal the unfused composition.
   */
  applyPooled(x: tf.Tensor4D, training: boolean, activation: BatchNormActivation = 'linear', alpha = 0.1, params?: FastWeights): tf.Tensor4D {
    const gamma = param<tf.Tensor1D>(this.gamma, params);
    const beta = param<tf.Tensor1D>(this.beta, params);
    if (!training) {
      const stats = { mean: this.runningMean as tf.Tensor1D, variance: this.runningVar as tf.Tensor1D, gamma, beta };
      return batchNormActPoolInference(x, stats, { varianceEpsilon: this.eps, activation, alpha });
    }
    const { y, mean, variance } = batchNormActPool(x, gamma, beta, { varianceEpsilon: this.eps, activation, alpha });
    this.updateRunningStats(mean, variance, x.shape[0] * x.shape[1] * x.shape[2]);
    return y;
  }

  /** Running stats are state outside the loss: assign() is not recorded on the gradient tape. Disposes mean/variance. */
  private updateRunningStats(mean: tf.Tensor1D, variance: tf.Tensor1D, n: number): void {
    tf.tidy(() => {
      const unbiased = tf.mul(variance, n / Math.max(n - 1, 1));
      this.runningMean.assign(tf.add(tf.mul(this.runningMean, 1 - this.momentum), tf.mul(mean, this.momentum)));
      this.runningVar.assign(tf.add(tf.mul(this.runningVar, 1 - this.momentum), tf.mul(unbiased, this.momentum)));
    });
    mean.dispose();
    variance.dispose();
  }
  variables(): tf.Variable[] {
    return [this.gamma, this.beta];
  }
  state(): tf.Variable[] {
    return [this.runningMean, this.runningVar];
  }
}
