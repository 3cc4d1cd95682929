/**
 * SLA's 4 rotations of an episode on the wasm backend: the transformed-copies kernel (src/backend/wasm/
 * image_copies.ts) against the composition it replaced (concat support + query, transpose/reverse per rotation,
 * stack, split back into support and query), paired A B A B.
 *
 *   FEWSHOT_WASM_THREADS=1 npx tsx bench/image-copies.ts [--images 80] [--size 84] [--rounds 15]
 *
 * Reports the main thread's CPU time (/proc/thread-self/schedstat, Linux) per call, median over rounds: on a
 * shared machine wall time mostly measures the neighbours. That counter advances at scheduler ticks while the
 * thread runs, so each sample repeats its variant until at least 200 ms of CPU have passed and divides by the
 * calls. With FEWSHOT_WASM_THREADS=1 the kernels run on this thread only; with more, the helper thread's share
 * is not counted (so use 1 for this A/B).
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '../src/tf-gradients.ts';
import { selectBackend } from '../src/backend/select.ts';
import { BUILTIN_TRANSFORM_SETS } from '../src/transforms/builtin.ts';
import type { TransformSet } from '../src/transforms/contract.ts';
import { expandImages } from '../src/transforms/expand.ts';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/** Nanoseconds of CPU this thread has run. */
function threadCpuNs(): number {
  return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
}

const images = arg('images', 80);
const size = arg('size', 84);
const rounds = arg('rounds', 15);
const nSupport = Math.min(25, Math.floor(images / 4));

await selectBackend('wasm');
const rotation = BUILTIN_TRANSFORM_SETS.find((s) => s.name === 'rotation')!;
const composed: TransformSet = {
  ...rotation,
  transforms: rotation.transforms.map((t) => ({ name: t.name, isIdentity: t.isIdentity, needsSquare: t.needsSquare, apply: t.apply })),
};
const support = tf.randomUniform([nSupport, size, size, 3]) as tf.Tensor4D;
const query = tf.randomUniform([images - nSupport, size, size, 3]) as tf.Tensor4D;
const m = rotation.transforms.length;

const variants: Record<string, () => tf.Tensor[]> = {
  'stock ops (concat, transpose/reverse, stack, split)': () => {
    const all = expandImages(composed, tf.concat([support, query], 0));
    return tf.split(all, [nSupport * m, (images - nSupport) * m], 0);
  },
  'transform_copies kernel (support, query)': () => [expandImages(rotation, support), expandImages(rotation, query)],
};

/** Main-thread CPU ms per call of `f`, over as many calls as fill 200 ms. */
function once(f: () => tf.Tensor[]): number {
  const t0 = threadCpuNs();
  let calls = 0;
  let ns = 0;
  while (ns < 200e6) {
    tf.dispose(tf.tidy(f));
    calls++;
    ns = threadCpuNs() - t0;
  }
  return ns / 1e6 / calls;
}

const times: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
for (const f of Object.values(variants)) once(f); // warm-up: kernel setup, heap growth
for (let r = 0; r < rounds; r++) for (const [name, f] of Object.entries(variants)) times[name].push(once(f));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`${images} images ${size}x${size}x3 -> [${images * m}, ${size}, ${size}, 3], ${rounds} rounds A B A B, main-thread CPU ms (median, min..max)`);
for (const [name, xs] of Object.entries(times)) {
  console.log(`  ${name}: ${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}..${Math.max(...xs).toFixed(1)})`);
}
