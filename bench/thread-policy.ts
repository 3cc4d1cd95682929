/**
 * The thread policy of the wasm + oneDNN engine, measured: training steps of one workload on wasm-onednn only, in
 * this process, under whatever FEWSHOT_WASM_THREADS / FEWSHOT_ONEDNN_THREADS / OMP_WAIT_POLICY the caller set.
 * Run it once per setting, alternating settings (A B A B), on a quiet machine:
 *
 *   FEWSHOT_WASM_THREADS=2 FEWSHOT_ONEDNN_THREADS=2 npx tsx bench/thread-policy.ts --method protonet --size 32 --shot 5
 *
 * Prints the median wall and process CPU time per step (all threads) after two warm-up steps.
 */
import { selectBackend } from '../src/backend/select.ts';
import { wasmThreadsInUse } from '../src/backend/wasm/threads.ts';
import { trainingStep } from '../src/train/step.ts';
import { Adam } from '../src/train/optimizer.ts';
import { makeEpisodes, episodeImages } from './lib/inputs.ts';
import { buildBenchMethod, LEARNING_RATE, type BenchMethodName, type BenchBackbone } from './lib/ours.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const spec = {
  method: arg('method', 'protonet') as BenchMethodName,
  backbone: arg('backbone', 'conv4') as BenchBackbone,
  imageSize: Number(arg('size', '32')),
  way: 5,
  shot: Number(arg('shot', '1')),
  query: Number(arg('query', '15')),
};
const iters = Number(arg('iters', '20'));
const sel = await selectBackend(arg('backend', 'wasm-onednn'));
const ep = episodeImages(spec, makeEpisodes(spec, 1, 'thread-policy')[0]);
const m = buildBenchMethod(spec, 1);
const trainable = m.trainableVariables();
const adam = new Adam();
const wall: number[] = [];
const cpu: number[] = [];
for (let k = 0; k < iters + 2; k++) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const loss = trainingStep(m, trainable, adam, [ep], LEARNING_RATE);
  loss.dataSync();
  loss.dispose();
  const c = process.cpuUsage(c0);
  if (k >= 2) wall.push(performance.now() - t0), cpu.push((c.user + c.system) / 1000);
}
const setting = `wasm ${wasmThreadsInUse()}t, FEWSHOT_ONEDNN_THREADS=${process.env.FEWSHOT_ONEDNN_THREADS ?? '-'}, OMP_WAIT_POLICY=${process.env.OMP_WAIT_POLICY ?? '-'}`;
console.log(
  `${spec.method} ${spec.backbone} ${spec.imageSize}px 5w${spec.shot}s [${sel.choice}; ${setting}]: wall ${median(wall).toFixed(1)} ms, CPU ${median(cpu).toFixed(1)} ms (median of ${iters})`,
);
