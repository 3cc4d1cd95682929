import * as tf from '@tensorflow/tfjs-core';
import './src/tf-gradients.ts';
import { selectBackend } from './src/backend/select.ts';
import { batchNormTraining } from './src/backend/wasm/batch_norm.ts';
if (tf.getBackend() !== 'wasm') await selectBackend('wasm');
const B = Number(process.argv[2] ?? 400), S = Number(process.argv[3] ?? 84);
const x = tf.randomNormal([B, S, S, 3]);
const ws = [3, 64, 64, 64].map((c) => tf.variable(tf.randomNormal([3, 3, c, 64], 0, 0.1)));
const gs = ws.map(() => tf.variable(tf.ones([64]))), bs = ws.map(() => tf.variable(tf.zeros([64])));
const mem = () => { const m = (tf.backend() as any).wasm.wasmMemory?.buffer ?? (tf.backend() as any).wasm.HEAPU8.buffer; return (m.byteLength / 2 ** 30).toFixed(2) + ' GiB'; };
for (let i = 0; i < 3; i++) {
  const t0 = performance.now();
  try {
    const { value, grads } = tf.variableGrads(() => { let h: tf.Tensor4D = x as any; ws.forEach((w, i) => { const c = tf.conv2d(h, w as any, 1, 'same'); console.log('  conv', i, mem()); h = tf.maxPool(batchNormTraining(c, gs[i] as any, bs[i] as any, { activation: 'relu' }).y as any, 2, 2, 'valid'); }); return tf.mean(h) as tf.Scalar; });
    value.dataSync(); value.dispose(); tf.dispose(grads);
    console.log('step', i, (performance.now() - t0).toFixed(0), 'ms', mem(), tf.memory().numTensors);
  } catch (e) { console.log('error', mem(), (e as Error).stack?.split('\n').slice(0, 14).join('\n')); break; }
}
