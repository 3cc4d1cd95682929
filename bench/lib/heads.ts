import * as tf from '@tensorflow/tfjs-core';
import { MetaOptNetRrHead, metaOptNetRrConfig } from '../../src/learners/metaoptnet/rr.ts';
import { MetaOptNetSvmHead, metaOptNetSvmConfig } from '../../src/learners/metaoptnet/svm.ts';
import type { FewShotHead } from '../../src/learners/contract.ts';
import { crossEntropy } from '../../src/losses/cross-entropy.ts';
import { gaussian, mulberry32 } from '../../src/util/prng.ts';
import { runPolicy, type PolicyRun, type StepPolicy } from './policy.ts';

/**
 * The MetaOptNet heads on their own, at the sizes SLA gives them: a 5-way K-shot episode with every image in its
 * 4 rotations is a 20-way episode with 20·K support embeddings, so the SVM dual has 20·K × 20 variables (2,000 at
 * 5 shots, 6,000 at MetaOptNet's 15 training shots). One timed step = what a training step asks of the head:
 * K = XXᵀ, the dual solve, logits, cross-entropy over the queries, and the gradients with respect to the support
 * and query embeddings, read back. Both sides read the same embeddings from a file.
 */
export type BenchHeadName = 'metaoptnet-svm' | 'metaoptnet-rr';

export interface HeadSpec {
  head: BenchHeadName;
  way: number;
  shot: number;
  /** Queries per class (MetaOptNet trains with 6). */
  query: number;
  /** Transformations per image (4 rotations with SLA). */
  rotations: number;
  /** Embedding dimension (ResNet-12 at 32 px: 640 × 2 × 2). */
  dim: number;
}

/** MetaOptNet's settings: SVM C = 0.1 (dual diagonal +1), ridge λ = 50; logit scale 1. */
export const HEAD_SETTINGS = { svmC: 0.1, ridgeLambda: 50, scale: 1 } as const;

export const jointWay = (s: HeadSpec) => s.way * s.rotations;
export const supportCount = (s: HeadSpec) => s.way * s.shot * s.rotations;
export const queryCount = (s: HeadSpec) => s.way * s.query * s.rotations;
/** Dual variables: support embeddings × joint classes. */
export const dualVariables = (s: HeadSpec) => supportCount(s) * jointWay(s);

/**
 * Labels of `perClass` images per class in all their rotations, image-major: image k of class c under rotation j
 * is row (c·perClass + k)·rotations + j with joint label c·rotations + j (the order of src/methods/sla.ts).
 */
export function jointLabels(s: Pick<HeadSpec, 'way' | 'rotations'>, perClass: number): Int32Array {
  const out = new Int32Array(s.way * perClass * s.rotations);
  let i = 0;
  for (let c = 0; c < s.way; c++) for (let k = 0; k < perClass; k++) for (let j = 0; j < s.rotations; j++) out[i++] = c * s.rotations + j;
  return out;
}

/** How embeddings are spread: x = scale · max(0, shift + sep · (class + ½ · rotation) + image + 0.3 · noise). */
export interface EmbeddingRegime {
  shift: number;
  scale: number;
  sep: number;
}
/** Moderately separated classes: the head bench's episodes. */
export const SEPARATED: EmbeddingRegime = { shift: 1, scale: 1, sep: 0.3 };
/** A large common component and weak class signal, as embeddings of a barely trained network (a harder QP). */
export const CORRELATED: EmbeddingRegime = { shift: 2, scale: 3, sep: 0.1 };

type EmbeddingShape = Pick<HeadSpec, 'way' | 'rotations' | 'dim'>;

/** The class and rotation components of one episode's embeddings, drawn from `r`. */
export function embeddingMeans(r: () => number, s: EmbeddingShape): { classMean: Float64Array[]; rotMean: Float64Array[] } {
  const classMean = Array.from({ length: s.way }, () => Float64Array.from({ length: s.dim }, () => gaussian(r)));
  const rotMean = Array.from({ length: s.rotations }, () => Float64Array.from({ length: s.dim }, () => gaussian(r)));
  return { classMean, rotMean };
}

/**
 * Embeddings shaped like a CNN's after ReLU: rectified Gaussians with a class, a rotation and a per-image
 * component, so the Gram matrix has the block structure (and the conditioning) of a real SLA episode. Rows in the
 * order of `jointLabels`.
 */
export function rectifiedEmbeddings(
  r: () => number,
  s: EmbeddingShape,
  perClass: number,
  means: ReturnType<typeof embeddingMeans>,
  regime: EmbeddingRegime = SEPARATED,
): Float32Array {
  const d = s.dim;
  const { classMean, rotMean } = means;
  const x = new Float32Array(s.way * perClass * s.rotations * d);
  let row = 0;
  for (let c = 0; c < s.way; c++) {
    for (let k = 0; k < perClass; k++) {
      const image = Float64Array.from({ length: d }, () => gaussian(r));
      for (let j = 0; j < s.rotations; j++, row++) {
        for (let q = 0; q < d; q++)
          x[row * d + q] = regime.scale * Math.max(0, regime.shift + regime.sep * (classMean[c][q] + 0.5 * rotMean[j][q]) + image[q] + 0.3 * gaussian(r));
      }
    }
  }
  return x;
}

/** `count` episodes, each support [supportCount, dim] then query [queryCount, dim], float32, seeded. */
export function makeHeadEpisodes(s: HeadSpec, count: number, seed: number): Float32Array[] {
  return Array.from({ length: count }, (_, e) => {
    const r = mulberry32(seed * 1000 + e);
    const means = embeddingMeans(r, s);
    const support = rectifiedEmbeddings(r, s, s.shot, means);
    const query = rectifiedEmbeddings(r, s, s.query, means);
    const out = new Float32Array(support.length + query.length);
    out.set(support);
    out.set(query, support.length);
    return out;
  });
}

function buildHead(s: HeadSpec): FewShotHead {
  if (s.head === 'metaoptnet-svm') return new MetaOptNetSvmHead(metaOptNetSvmConfig.parse({ C: HEAD_SETTINGS.svmC, scale: HEAD_SETTINGS.scale }));
  return new MetaOptNetRrHead(metaOptNetRrConfig.parse({ lambda: HEAD_SETTINGS.ridgeLambda, scale: HEAD_SETTINGS.scale }));
}

export interface HeadStepValue {
  loss: number;
  /** Frobenius norms of ∂L/∂support and ∂L/∂query (the bench compares them with the peer's). */
  supportGradNorm: number;
  queryGradNorm: number;
}

/** Our head step (see the file comment) under the bench's step policy, cycling through the episodes. */
export function timeOursHead(
  s: HeadSpec,
  episodes: readonly Float32Array[],
  policy: StepPolicy,
): PolicyRun<HeadStepValue> & { numTensorsBefore: number; numTensorsAfter: number } {
  const head = buildHead(s);
  const ns = supportCount(s);
  const nq = queryCount(s);
  const supportLabels = jointLabels(s, s.shot);
  const queryLabels = jointLabels(s, s.query);
  const tensors = episodes.map((e) => ({
    support: tf.tensor2d(e.subarray(0, ns * s.dim), [ns, s.dim]),
    query: tf.tensor2d(e.subarray(ns * s.dim, (ns + nq) * s.dim), [nq, s.dim]),
  }));
  const norm = (g: tf.Tensor) => Math.sqrt((g.dataSync() as Float32Array).reduce((a, v) => a + v * v, 0));
  let numTensorsBefore = -1;
  try {
    const lossOf = (support: tf.Tensor, query: tf.Tensor) =>
      crossEntropy(head.logits({ support: support as tf.Tensor2D, query: query as tf.Tensor2D, supportLabels, way: jointWay(s) }, 'train'), queryLabels);
    const step = tf.valueAndGrads((support: tf.Tensor, query: tf.Tensor) => lossOf(support, query) as tf.Scalar);
    const run = runPolicy((i) => {
      const ep = tensors[i % tensors.length];
      const { value, grads } = step([ep.support, ep.query]);
      const out: HeadStepValue = { loss: value.dataSync()[0], supportGradNorm: norm(grads[0]), queryGradNorm: norm(grads[1]) };
      tf.dispose([value, ...grads]);
      if (i === 0) numTensorsBefore = tf.memory().numTensors;
      return out;
    }, policy);
    return { ...run, numTensorsBefore, numTensorsAfter: tf.memory().numTensors };
  } finally {
    tensors.forEach((t) => tf.dispose([t.support, t.query]));
  }
}
