/**
 * The fused Adam update (src/backend/wasm/adam.ts, one kernel call for all variables) against the composed tf-op
 * Adam of src/train/optimizer.ts run on the cpu backend: same parameters, gradients and steps must give the same
 * parameters and slots. (An optimizer update has no gradient of its own to check.)
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { selectBackend } from '../src/backend/select.ts';
import { ADAM_UPDATE, registerAdamUpdate } from '../src/backend/wasm/adam.ts';
import { Adam } from '../src/train/optimizer.ts';

const SHAPES = [[3, 3, 3, 8], [8], [5, 7], [1]];
const STEPS = 4;

function seeded(shape: number[], seed: number): Float32Array {
  return tf.tidy(() => tf.randomNormal(shape, 0, 1, 'float32', seed).dataSync() as Float32Array);
}

/** Runs STEPS Adam steps on the current backend; gradients are fixed per step. Returns p, m, v as arrays. */
function runAdam(weightDecay: number, init: Float32Array[], grads: Float32Array[][]): { p: number[][]; m: number[][]; v: number[][] } {
  const vars = SHAPES.map((s, i) => tf.tidy(() => tf.variable(tf.tensor(init[i], s), true)));
  const opt = new Adam(weightDecay);
  for (let t = 0; t < STEPS; t++) {
    const g = SHAPES.map((s, i) => tf.tensor(grads[t][i], s));
    opt.step(vars, g, 1e-2 * (t + 1));
    tf.dispose(g);
  }
  const [m, v] = opt.state().map((s) => s.tensors.map((x) => Array.from(x.dataSync())));
  const out = { p: vars.map((x) => Array.from(x.dataSync())), m, v };
  tf.dispose([...vars, ...opt.state().flatMap((s) => s.tensors)]);
  return out;
}

function maxRel(a: number[][], b: number[][]): number {
  let worst = 0;
  a.forEach((xs, i) => xs.forEach((x, j) => (worst = Math.max(worst, Math.abs(x - b[i][j]) / Math.max(Math.abs(b[i][j]), 1e-6)))));
  return worst;
}

for (const weightDecay of [0, 5e-4]) {
  test.serial(`fused Adam (wasm and cpu) = composed Adam (cpu), weight decay ${weightDecay}`, async (t) => {
    await selectBackend('wasm');
    registerAdamUpdate();
    await tf.setBackend('cpu');
    const init = SHAPES.map((s, i) => seeded(s, 10 + i));
    // Some gradients exactly zero and some tiny, where eps dominates the denominator.
    const grads = Array.from({ length: STEPS }, (_, k) =>
      SHAPES.map((s, i) => seeded(s, 100 + 10 * k + i).map((x, j) => (j % 5 === 0 ? 0 : j % 7 === 0 ? x * 1e-9 : x))),
    );

    tf.unregisterKernel(ADAM_UPDATE, 'cpu');
    const composed = runAdam(weightDecay, init, grads);
    registerAdamUpdate();
    t.truthy(tf.getKernel(ADAM_UPDATE, 'cpu'));
    const fusedCpu = runAdam(weightDecay, init, grads);
    await tf.setBackend('wasm');
    t.truthy(tf.getKernel(ADAM_UPDATE, 'wasm'));
    const before = tf.memory().numTensors;
    const fusedWasm = runAdam(weightDecay, init, grads);
    t.is(tf.memory().numTensors, before, 'no tensor leaked');
    for (const [name, r] of [
      ['cpu', fusedCpu],
      ['wasm', fusedWasm],
    ] as const) {
      for (const k of ['p', 'm', 'v'] as const) {
        const d = maxRel(r[k], composed[k]);
        t.true(d < 1e-6, `${name} ${k}: max rel diff ${d}`);
      }
    }
    // The update really moved the parameters (the comparison is not between two no-ops).
    t.true(
      maxRel(
        composed.p,
        init.map((x) => Array.from(x)),
      ) > 1e-3,
    );
  });
}
