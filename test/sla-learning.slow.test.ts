import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import seedrandom from 'seedrandom';
import { selectBackend } from '../src/backend/select.ts';
import { ProtoNetHead } from '../src/learners/protonet/index.ts';
import type { EpisodeImages } from '../src/episodes/images.ts';
import { jointLabels } from '../src/methods/aggregate.ts';
import { SlaMethod, slaWrapper } from '../src/methods/sla.ts';
import { TinyConvBackbone } from './fixtures/models.ts';

/**
 * Learning test: protonet-sla with a tiny conv backbone on a 2-class toy problem of 8×8 images
 * (class template + N(0, 2²) pixel noise, 3 shots). The joint (class × rotation) task must be learned: the joint training
 * loss falls and the 8-way joint accuracy on a held-out episode rises.
 */

test.before(async () => {
  await selectBackend('cpu');
});

const SIDE = 8;
const CHANNELS = 8;
const SHOT = 3;

/** Two fixed class templates; samples are template + N(0, noise²) pixels. */
function makeEpisodeSampler(seed: number, noise: number) {
  const rng = seedrandom(String(seed));
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
  const pixels = SIDE * SIDE * 3;
  const templates = [0, 1].map(() => Array.from({ length: pixels }, gauss));
  const images = (labels: number[]) =>
    tf.tensor4d(
      labels.flatMap((c) => templates[c].map((v) => v + noise * gauss())),
      [labels.length, SIDE, SIDE, 3],
    );
  return (shot: number, query: number): EpisodeImages => {
    const support = [0, 1].flatMap((c) => new Array(shot).fill(c));
    const queries = [0, 1].flatMap((c) => new Array(query).fill(c));
    return {
      supportImages: images(support),
      supportLabels: new Int32Array(support),
      queryImages: images(queries),
      queryLabels: new Int32Array(queries),
      way: 2,
    };
  };
}

function jointAccuracy(method: SlaMethod, ep: EpisodeImages): number {
  return tf.tidy(() => {
    const { logits } = method.jointForward(ep, 'eval');
    const predicted = Array.from(tf.argMax(logits, 1).dataSync());
    const target = jointLabels(ep.queryLabels, method.transformCount);
    return predicted.reduce((n, p, i) => n + (p === target[i] ? 1 : 0), 0) / target.length;
  });
}

test('protonet-sla learns the joint class × rotation task on a toy problem', (t) => {
  const method = slaWrapper.create({
    backbone: new TinyConvBackbone(4, CHANNELS, Math.sqrt(2 / 27)),
    head: new ProtoNetHead({ normalizeByDim: true, learnableScale: true }),
    way: 2,
    imageSize: SIDE,
    seed: 0,
    options: { transform: 'rotation' },
  }) as SlaMethod;
  const sample = makeEpisodeSampler(1, 2);
  const heldOut = sample(SHOT, 20);
  const accuracyBefore = jointAccuracy(method, heldOut);
  const optimizer = tf.train.adam(0.03);
  const losses: number[] = [];
  for (let step = 0; step < 50; step++) {
    const ep = sample(SHOT, 4);
    const loss = optimizer.minimize(() => method.trainLoss(ep), true, method.trainableVariables());
    losses.push(loss!.dataSync()[0]);
    tf.dispose([loss!, ep.supportImages, ep.queryImages]);
  }
  const accuracyAfter = jointAccuracy(method, heldOut);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const lossBefore = mean(losses.slice(0, 5));
  const lossAfter = mean(losses.slice(-5));
  t.log(
    `joint loss ${lossBefore.toFixed(3)} → ${lossAfter.toFixed(3)}; held-out 8-way joint accuracy ${accuracyBefore.toFixed(3)} → ${accuracyAfter.toFixed(3)}`,
  );
  t.true(lossAfter < 0.6 * lossBefore, `loss ${lossBefore} → ${lossAfter}`);
  t.true(accuracyAfter >= accuracyBefore + 0.15, `accuracy ${accuracyBefore} → ${accuracyAfter}`);
  t.true(accuracyAfter >= 0.75, `final joint accuracy ${accuracyAfter}`);
  optimizer.dispose();
});
