import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { Adam } from '../src/train/optimizer.ts';
import { Conv4 } from '../src/backbones/conv4.ts';

// Training steps of ProtoNet on a 16 px Conv-4 on the cpu backend: seconds of CPU each (the optimizers, schedules
// and checkpoints alone: train-core.test.ts).
test.before(async () => {
  await tf.setBackend('cpu');
});

test('no tensor leaks: tf.memory() is flat across training steps and evaluations', async (t) => {
  const { buildMethod } = await import('../src/methods/build.ts');
  await import('../src/builtin.ts');
  const { trainingStep } = await import('../src/train/step.ts');
  const method = buildMethod({ name: 'protonet', backbone: 'conv4', imageSize: 16, way: 2, seed: 0 });
  const vars = method.trainableVariables();
  const opt = new Adam();
  const ep = () => ({
    supportImages: tf.randomNormal([2, 16, 16, 3]) as tf.Tensor4D,
    supportLabels: new Int32Array([0, 1]),
    queryImages: tf.randomNormal([4, 16, 16, 3]) as tf.Tensor4D,
    queryLabels: new Int32Array([0, 0, 1, 1]),
    way: 2,
  });
  const counts: number[] = [];
  for (let i = 0; i < 6; i++) {
    const e = ep();
    const loss = trainingStep(method, vars, opt, [e], 1e-3);
    loss.dispose();
    tf.dispose(Object.values(tf.tidy(() => method.predict(e))));
    tf.dispose([e.supportImages, e.queryImages]);
    counts.push(tf.memory().numTensors);
  }
  // The first step creates the optimizer slots; after that the count must not move.
  t.deepEqual(counts.slice(1), Array(5).fill(counts[1]));
});

test('training is deterministic: same seed and episodes give bit-identical weights', async (t) => {
  const { buildMethod } = await import('../src/methods/build.ts');
  await import('../src/builtin.ts');
  const { trainingStep } = await import('../src/train/step.ts');
  const trainTwice = () => {
    const method = buildMethod({ name: 'protonet', backbone: 'conv4', imageSize: 16, way: 2, seed: 3 });
    const vars = method.trainableVariables();
    const opt = new Adam();
    for (let i = 0; i < 3; i++) {
      const e = {
        supportImages: tf.randomNormal([2, 16, 16, 3], 0, 1, 'float32', 10 + i) as tf.Tensor4D,
        supportLabels: new Int32Array([0, 1]),
        queryImages: tf.randomNormal([4, 16, 16, 3], 0, 1, 'float32', 20 + i) as tf.Tensor4D,
        queryLabels: new Int32Array([0, 0, 1, 1]),
        way: 2,
      };
      trainingStep(method, vars, opt, [e], 1e-2).dispose();
      tf.dispose([e.supportImages, e.queryImages]);
    }
    return [...vars, ...method.stateVariables()].map((v) => Array.from(v.dataSync()));
  };
  const a = trainTwice();
  const b = trainTwice();
  t.deepEqual(a, b);
  t.notDeepEqual(a[0], Array.from(new Conv4(3).trainableVariables()[0].dataSync()));
});
