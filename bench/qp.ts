/**
 * MetaOptNet-SVM QP cost per episode at the sizes that matter:
 *   375 variables   = 5-way 15-shot (MetaOptNet's training episode): 75 support × 5 classes
 *   2,000 variables = 5-way 5-shot × 4 rotations (SLA): 100 support × 20 joint classes
 *   6,000 variables = 5-way 15-shot × 4 rotations (SLA training): 300 support × 20 joint classes
 *
 *   npx tsx bench/qp.ts [--reps N] [--dim D] [--backend wasm|cpu] [--no-head]
 *
 * Part 1 (solver): src/learners/metaoptnet/qp/crammer-singer.ts on float64 Gram matrices of synthetic embeddings
 * (rectified Gaussians with class, rotation and per-image components, D-dimensional, default 640), in two
 * regimes: 'separated' (moderate correlation) and 'correlated' (a large common component, like embeddings of an
 * untrained CNN, which makes K + I badly conditioned). Times the solve and the backward (vector–Jacobian product
 * for a random ∂L/∂α), wall and process-CPU ms (the machine is shared: CPU time is the stable number).
 * Part 2 (head): the whole MetaOptNet-SVM head on a tfjs backend: K = XXᵀ, solve, logits, cross-entropy, and
 * tf.grads w.r.t. support and query embeddings of 2,560-d (ResNet-12 at 32 px), 6 queries per class (× 4 for SLA).
 */
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/backend/select.ts';
import { solveCrammerSinger } from '../src/learners/metaoptnet/qp/crammer-singer.ts';
import { MetaOptNetSvmHead, metaOptNetSvmConfig } from '../src/learners/metaoptnet/svm.ts';
import { crossEntropy } from '../src/losses/cross-entropy.ts';
import { mulberry32, gaussian } from '../src/util/prng.ts';
import { gram } from '../src/learners/metaoptnet/qp/dense.ts';
import { CORRELATED, SEPARATED, embeddingMeans, jointLabels, rectifiedEmbeddings, type EmbeddingRegime } from './lib/heads.ts';

interface Size {
  label: string;
  way: number;
  shot: number;
  m: number;
}
const SIZES: Size[] = [
  { label: '375', way: 5, shot: 15, m: 1 },
  { label: '2,000', way: 5, shot: 5, m: 4 },
  { label: '6,000', way: 5, shot: 15, m: 4 },
];
const REGIMES = { separated: SEPARATED, correlated: CORRELATED } as const;

function parseArgs(argv: string[]) {
  const get = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return {
    reps: Number(get('--reps') ?? 5),
    dim: Number(get('--dim') ?? 640),
    backend: get('--backend') ?? 'wasm',
    head: !argv.includes('--no-head'),
  };
}

/** Embeddings [n, d] of an SLA-style episode (image i of class c under transformation j) and their joint labels. */
function embeddings(seed: number, s: Size, perClass: number, d: number, regime: EmbeddingRegime) {
  const r = mulberry32(seed);
  const shape = { way: s.way, rotations: s.m, dim: d };
  const x = rectifiedEmbeddings(r, shape, perClass, embeddingMeans(r, shape), regime);
  return { x: Float64Array.from(x), n: x.length / d, labels: jointLabels(shape, perClass) };
}

/** Wall and process-CPU milliseconds of fn. */
function timed<T>(fn: () => T): { value: T; wall: number; cpu: number } {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = fn();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { value, wall, cpu: (c.user + c.system) / 1000 };
}

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : 0.5 * (s[s.length / 2 - 1] + s[s.length / 2]);
};
const fmt = (v: number[]) => `${median(v).toFixed(1).padStart(7)} (max ${Math.max(...v).toFixed(1)})`;

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const warm = embeddings(999, SIZES[0], SIZES[0].shot, 64, REGIMES.separated);
  solveCrammerSinger(gram(warm.x, warm.n, 64), warm.labels, 5, { C: 0.1 }).vjp(new Float64Array(warm.n * 5).fill(0.1)); // JIT warm-up

  console.log(`# Part 1: solver (float64), ${args.dim}-d embeddings, C = 0.1, ${args.reps} episodes per cell; ms per episode, median (max)`);
  console.log('variables  regime       solve wall        solve cpu         backward wall   sweeps  solves  stages');
  for (const size of SIZES) {
    for (const [name, regime] of Object.entries(REGIMES)) {
      const solveWall: number[] = [];
      const solveCpu: number[] = [];
      const backWall: number[] = [];
      const sweeps: number[] = [];
      const solves: number[] = [];
      const stages: number[] = [];
      for (let rep = 0; rep < args.reps; rep++) {
        const e = embeddings(rep, size, size.shot, args.dim, regime);
        const way = size.way * size.m;
        const kernel = gram(e.x, e.n, args.dim);
        const s = timed(() => solveCrammerSinger(kernel, e.labels, way, { C: 0.1 }));
        const r = mulberry32(rep + 100);
        const bar = Float64Array.from({ length: e.n * way }, () => gaussian(r));
        const b = timed(() => s.value.vjp(bar));
        solveWall.push(s.wall);
        solveCpu.push(s.cpu);
        backWall.push(b.wall);
        sweeps.push(s.value.stats.sweeps);
        solves.push(s.value.stats.activeSetIterations);
        stages.push(s.value.stats.stages);
      }
      console.log(
        `${size.label.padStart(9)}  ${name.padEnd(11)} ${fmt(solveWall)}  ${fmt(solveCpu)}  ${fmt(backWall)}  ${String(median(sweeps)).padStart(6)}  ${String(median(solves)).padStart(6)}  ${String(Math.max(...stages)).padStart(6)}`,
      );
    }
  }

  if (!args.head) return;
  const backend = await selectBackend(args.backend);
  const d = 2560;
  console.log(
    `\n# Part 2: MetaOptNet-SVM head on ${backend.choice}, ${d}-d embeddings, 6 queries per class: forward (K, solve, logits, CE) and backward (tf.grads w.r.t. support and query), ms per episode, median (max)`,
  );
  console.log('variables  regime       forward wall      backward wall     total cpu');
  const head = new MetaOptNetSvmHead(metaOptNetSvmConfig.parse({}));
  for (const size of SIZES) {
    for (const [name, regime] of Object.entries(REGIMES)) {
      const fwd: number[] = [];
      const bwd: number[] = [];
      const cpu: number[] = [];
      for (let rep = -1; rep < args.reps; rep++) {
        const s = embeddings(Math.max(rep, 0), size, size.shot, d, regime);
        const q = embeddings(Math.max(rep, 0) + 50, size, 6, d, regime);
        const support = tf.tensor2d(Float32Array.from(s.x), [s.n, d]);
        const query = tf.tensor2d(Float32Array.from(q.x), [q.n, d]);
        const ep = { support, query, supportLabels: s.labels, way: size.way * size.m };
        const f = timed(() => tf.tidy(() => crossEntropy(head.logits(ep, 'train'), q.labels).dataSync()[0]));
        const total = timed(() => {
          const grads = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
            crossEntropy(head.logits({ ...ep, support: a as tf.Tensor2D, query: b as tf.Tensor2D }, 'train'), q.labels),
          )([support, query]);
          grads.forEach((g) => g.dataSync());
          tf.dispose(grads);
        });
        tf.dispose([support, query]);
        if (rep < 0) continue; // warm-up (kernel compilation, allocation)
        fwd.push(f.wall);
        bwd.push(total.wall - f.wall);
        cpu.push(total.cpu);
      }
      console.log(`${size.label.padStart(9)}  ${name.padEnd(11)} ${fmt(fwd)}  ${fmt(bwd)}  ${fmt(cpu)}`);
    }
  }
}

await main();
