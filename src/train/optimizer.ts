import * as tf from '@tensorflow/tfjs-core';
import { adamUpdate } from '../backend/wasm/adam.ts';

/**
 * Optimizers with PyTorch semantics (L2 weight decay added to the gradient, Nesterov as torch.optim.SGD),
 * a settable learning rate for schedules, and state that checkpoints by variable order.
 * Written here rather than using tf.train.* because those hide the learning rate and their state naming
 * is tied to variable names, which are process-unique in tfjs.
 */
/** A zero-initialised slot variable; tidy disposes the temporary (tidy never disposes variables). */
function zeroSlot(p: tf.Variable): tf.Variable {
  return tf.tidy(() => tf.variable(tf.zerosLike(p), false));
}

export interface Optimizer {
  readonly type: string;
  /** Apply one update; `grads[i]` belongs to `variables[i]`. Does not dispose grads. */
  step(variables: tf.Variable[], grads: tf.Tensor[], lr: number): void;
  /** Slot tensors in a fixed order (for checkpoints). */
  state(): { name: string; tensors: tf.Variable[] }[];
  stepCount: number;
}

export class Adam implements Optimizer {
  readonly type = 'adam';
  stepCount = 0;
  private m: tf.Variable[] = [];
  private v: tf.Variable[] = [];
  constructor(
    private readonly weightDecay = 0,
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
    private readonly eps = 1e-8,
  ) {}
  private ensureSlots(variables: tf.Variable[]): void {
    if (this.m.length) return;
    this.m = variables.map((p) => zeroSlot(p));
    this.v = variables.map((p) => zeroSlot(p));
  }
  step(variables: tf.Variable[], grads: tf.Tensor[], lr: number): void {
    this.ensureSlots(variables);
    this.stepCount++;
    const t = this.stepCount;
    const bc1 = 1 - this.beta1 ** t;
    const bc2 = 1 - this.beta2 ** t;
    // One fused kernel call for all variables where the backend has it (src/backend/wasm/adam.ts: same arithmetic).
    const fused = adamUpdate(variables, grads, this.m, this.v, {
      lr,
      beta1: this.beta1,
      beta2: this.beta2,
      eps: this.eps,
      weightDecay: this.weightDecay,
      step: t,
    });
    if (fused) {
      variables.forEach((p, i) => {
        p.assign(fused.p[i]);
        this.m[i].assign(fused.m[i]);
        this.v[i].assign(fused.v[i]);
      });
      tf.dispose([...fused.p, ...fused.m, ...fused.v]);
      return;
    }
    tf.tidy(() => {
      variables.forEach((p, i) => {
        let g = grads[i];
        if (this.weightDecay) g = tf.add(g, tf.mul(p, this.weightDecay));
        const m = tf.add(tf.mul(this.m[i], this.beta1), tf.mul(g, 1 - this.beta1));
        const v = tf.add(tf.mul(this.v[i], this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
        this.m[i].assign(m);
        this.v[i].assign(v);
        const denom = tf.add(tf.sqrt(tf.div(v, bc2)), this.eps);
        p.assign(tf.sub(p, tf.mul(tf.div(m, denom), lr / bc1)));
      });
    });
  }
  state() {
    return [
      { name: 'm', tensors: this.m },
      { name: 'v', tensors: this.v },
    ];
  }
  /** Restore slots (used by checkpoint load); shapes must match variables. */
  restore(variables: tf.Variable[], slots: Record<string, tf.Tensor[]>, stepCount: number): void {
    this.ensureSlots(variables);
    slots.m.forEach((t, i) => this.m[i].assign(t));
    slots.v.forEach((t, i) => this.v[i].assign(t));
    this.stepCount = stepCount;
  }
}

export class Sgd implements Optimizer {
  readonly type = 'sgd';
  stepCount = 0;
  private buf: tf.Variable[] = [];
  constructor(
    private readonly momentum = 0.9,
    private readonly nesterov = true,
    private readonly weightDecay = 5e-4,
  ) {}
  step(variables: tf.Variable[], grads: tf.Tensor[], lr: number): void {
    if (!this.buf.length) this.buf = variables.map((p) => zeroSlot(p));
    this.stepCount++;
    const first = this.stepCount === 1;
    tf.tidy(() => {
      variables.forEach((p, i) => {
        let g = grads[i];
        if (this.weightDecay) g = tf.add(g, tf.mul(p, this.weightDecay));
        if (this.momentum) {
          // torch.optim.SGD: the first step initialises the buffer with the gradient itself.
          const b = first ? g : tf.add(tf.mul(this.buf[i], this.momentum), g);
          this.buf[i].assign(b);
          g = this.nesterov ? tf.add(g, tf.mul(b, this.momentum)) : b;
        }
        p.assign(tf.sub(p, tf.mul(g, lr)));
      });
    });
  }
  state() {
    return [{ name: 'momentum', tensors: this.buf }];
  }
  restore(variables: tf.Variable[], slots: Record<string, tf.Tensor[]>, stepCount: number): void {
    if (!this.buf.length) this.buf = variables.map((p) => zeroSlot(p));
    slots.momentum.forEach((t, i) => this.buf[i].assign(t));
    this.stepCount = stepCount;
  }
}

export type RestorableOptimizer = (Adam | Sgd) & Optimizer;
