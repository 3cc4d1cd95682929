import test from 'ava';
import { UserError, buildMethod, registerBackbone, selectBackend, tf, type Backbone, type FastWeights } from 'fewshot';
import { MamlLearner, mamlConfigSchema } from './index.ts';

/** A linear backbone on flattened images, embedding = x·W: small enough to differentiate by hand. */
class LinearBackbone implements Backbone {
  readonly id = 'test-linear';
  readonly weight: tf.Variable;
  constructor(
    readonly inputDim: number,
    readonly dim: number,
    seed: number,
  ) {
    this.weight = tf.variable(tf.randomNormal([inputDim, dim], 0, 0.5, 'float32', seed), true, `test-linear/weight#${seed}-${Math.random()}`);
  }
  apply(images: tf.Tensor4D, _training: boolean, params?: FastWeights): tf.Tensor2D {
    const w = (params?.get(this.weight) ?? this.weight) as tf.Tensor2D;
    return tf.matMul(tf.reshape(images, [images.shape[0], -1]) as tf.Tensor2D, w);
  }
  trainableVariables() {
    return [this.weight];
  }
  stateVariables() {
    return [];
  }
  embeddingDim() {
    return this.dim;
  }
}
registerBackbone({ id: 'test-linear', description: 'test', create: ({ imageSize, seed }) => new LinearBackbone(imageSize * imageSize * 3, 3, seed) });

test.before(async () => {
  await selectBackend('cpu');
});

function task(size: number, way: number, shot: number, query: number, seed: number) {
  const supportLabels = Int32Array.from({ length: way * shot }, (_, i) => Math.floor(i / shot));
  const queryLabels = Int32Array.from({ length: way * query }, (_, i) => Math.floor(i / query));
  return {
    supportImages: tf.randomNormal([way * shot, size, size, 3], 0, 1, 'float32', seed) as tf.Tensor4D,
    queryImages: tf.randomNormal([way * query, size, size, 3], 0, 1, 'float32', seed + 1) as tf.Tensor4D,
    supportLabels,
    queryLabels,
    way,
  };
}

type M = number[][];
const mm = (a: M, b: M): M => a.map((r) => b[0].map((_, j) => r.reduce((s, v, k) => s + v * b[k][j], 0)));
const tr = (a: M): M => a[0].map((_, j) => a.map((r) => r[j]));

test('one MAML inner step equals a hand-computed SGD step on backbone and head', (t) => {
  const way = 2;
  const backbone = new LinearBackbone(2 * 2 * 3, 3, 7);
  const learner = new MamlLearner('maml', mamlConfigSchema.parse({ innerSteps: 1, evalInnerSteps: 1, innerLr: 0.5, firstOrder: true }));
  learner.prepare({ way, backbone, embeddingDim: 3, seed: 0 });
  const [weight, bias] = learner.variables();
  weight.assign(
    tf.tensor2d([
      [0.3, -0.2],
      [0.1, 0.4],
      [-0.5, 0.2],
    ]),
  );
  bias.assign(tf.tensor1d([0.1, -0.1]));
  const ep = task(2, way, 2, 1, 3);
  const logits = tf.tidy(() => learner.adapt(ep, { backbone, phase: 'train', training: true }).logits.arraySync());

  // Hand: z = X·Wb, p = softmax(z·W + b), G = (p − Y)/n; ∇W = zᵀG, ∇b = Σ_rows G, ∇Wb = Xᵀ(G·Wᵀ).
  const X = tf.reshape(ep.supportImages, [4, 12]).arraySync() as M;
  const Xq = tf.reshape(ep.queryImages, [2, 12]).arraySync() as M;
  const Wb = backbone.weight.arraySync() as M;
  const W = weight.arraySync() as M;
  const b = bias.arraySync() as number[];
  const z = mm(X, Wb);
  const G = mm(z, W).map((row, i) => {
    const e = row.map((v, j) => Math.exp(v + b[j]));
    const s = e[0] + e[1];
    return e.map((v, j) => (v / s - (ep.supportLabels[i] === j ? 1 : 0)) / X.length);
  });
  const lr = 0.5;
  const gW = mm(tr(z), G);
  const gb = [0, 1].map((j) => G.reduce((s, r) => s + r[j], 0));
  const gWb = mm(tr(X), mm(G, tr(W)));
  const W1 = W.map((r, i) => r.map((v, j) => v - lr * gW[i][j]));
  const b1 = b.map((v, j) => v - lr * gb[j]);
  const Wb1 = Wb.map((r, i) => r.map((v, j) => v - lr * gWb[i][j]));
  const expected = mm(mm(Xq, Wb1), W1).map((r) => r.map((v, j) => v + b1[j]));
  (logits as M).forEach((r, i) => r.forEach((v, j) => t.true(Math.abs(v - expected[i][j]) < 1e-4, `logit[${i}][${j}] ${v} vs ${expected[i][j]}`)));
  // The learner's variables are the initial parameters: adapt() must not change them.
  t.deepEqual(weight.arraySync(), W);
});

/** The outer (query) loss of one task as a function of the meta-parameters, and its gradients. */
function outerGradients(name: string, firstOrder: boolean) {
  const method = buildMethod({ name, backbone: 'test-linear', imageSize: 2, way: 2, seed: 5, headConfig: { innerSteps: 2, innerLr: 0.4, firstOrder } });
  const [w] = method.head.variables();
  w.assign(tf.randomNormal(w.shape, 0, 0.5, 'float32', 11));
  const ep = { ...task(2, 2, 2, 2, 21) };
  const vars = method.trainableVariables();
  const { grads } = tf.variableGrads(() => method.trainLoss(ep), vars);
  return { method, ep, vars, grads: vars.map((v) => grads[v.name].dataSync().slice()) };
}

test('ANIL second order matches finite differences of the outer loss; first order differs from it', (t) => {
  const so = outerGradients('anil', false);
  const fo = outerGradients('anil', true);
  const eps = 1e-2;
  let maxRel = 0;
  let foDiff = 0;
  so.vars.forEach((v, k) => {
    const base = v.dataSync().slice();
    for (let i = 0; i < base.length; i++) {
      const at = (d: number) => {
        const x = base.slice();
        x[i] += d;
        v.assign(tf.tensor(x, v.shape));
        return tf.tidy(() => so.method.trainLoss(so.ep).dataSync()[0]);
      };
      const fd = (at(eps) - at(-eps)) / (2 * eps);
      maxRel = Math.max(maxRel, Math.abs(fd - so.grads[k][i]) / Math.max(1e-2, Math.abs(fd)));
      foDiff = Math.max(foDiff, Math.abs(fo.grads[k][i] - so.grads[k][i]));
    }
    v.assign(tf.tensor(base, v.shape));
  });
  t.true(maxRel < 0.05, `second-order gradient vs finite differences: max relative error ${maxRel}`);
  t.true(foDiff > 1e-3, `first-order gradient should differ from the exact one, max |Δ| = ${foDiff}`);
});

test('MAML second order through the conv backbone fails: tfjs has no gradient for the conv backward kernels', (t) => {
  const method = buildMethod({ name: 'maml', backbone: 'conv4', imageSize: 16, way: 2, seed: 1, headConfig: { innerSteps: 1, firstOrder: false } });
  const ep = task(16, 2, 1, 1, 31);
  const err = t.throws(() => tf.variableGrads(() => method.trainLoss(ep), method.trainableVariables()));
  t.regex(err!.message, /gradient function not found for/);
  t.log(err!.message.split('\n')[0]);
  // First order trains through the same backbone.
  const fo = buildMethod({ name: 'maml', backbone: 'conv4', imageSize: 16, way: 2, seed: 1, headConfig: { innerSteps: 1, firstOrder: true } });
  const { value, grads } = tf.variableGrads(() => fo.trainLoss(ep), fo.trainableVariables());
  t.true(Number.isFinite(value.dataSync()[0]));
  t.true(Object.values(grads).some((g) => tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0]) > 0));
});

test('maml-sla adapts on the N·M joint classes and reports SLA+AG / SLA+SI for N classes', (t) => {
  const method = buildMethod({ name: 'maml-sla', backbone: 'test-linear', imageSize: 4, way: 3, seed: 2, headConfig: { innerSteps: 1, evalInnerSteps: 2 } });
  t.deepEqual(method.head.variables()[0].shape, [3, 12]); // head for 3 × 4 rotations
  const ep = task(4, 3, 1, 2, 41);
  const loss = tf.tidy(() => method.trainLoss(ep).dataSync()[0]);
  t.true(Number.isFinite(loss));
  const out = method.predict(ep);
  t.deepEqual(Object.keys(out).sort(), ['ag', 'si']);
  t.deepEqual(out.ag.shape, [6, 3]);
  t.throws(() => buildMethod({ name: 'maml-sla-sd', backbone: 'test-linear', imageSize: 4, way: 3, seed: 2 }), {
    instanceOf: UserError,
    message: /adaptive learner/,
  });
});
