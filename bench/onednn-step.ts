/**
 * One bench training step (trainingStep + Adam, loss read back) with the oneDNN accelerator and without, paired
 * in one process (A B A B: the accelerator is switched per step, everything else is the same wasm backend):
 *
 *   [FEWSHOT_WASM_THREADS=1] [FEWSHOT_ONEDNN_THREADS=1] npx tsx bench/onednn-step.ts \
 *     [--method protonet|protonet-sla] [--size 32] [--shot 1] [--backbone conv4|resnet12] [--iters 8]
 *
 * Prints the median wall time and the median process CPU time (all threads: oneDNN's OpenMP workers, XNNPACK's
 * pool, the helper thread) per step, and the ratio wasm / wasm+onednn of each. On a shared machine the CPU time
 * is the steadier number (wall time includes waiting for the neighbours); neither replaces `npm run bench` on a
 * quiet machine. Also checks that both paths give the same first loss to 1e-4 (relative).
 */
import { selectBackend } from '../src/backend/select.ts';
import { activeOnednn, setOnednnActive } from '../src/backend/wasm/onednn.ts';
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

const method = arg('method', 'protonet') as BenchMethodName;
const backbone = arg('backbone', 'conv4') as BenchBackbone;
const imageSize = Number(arg('size', '32'));
const shot = Number(arg('shot', '1'));
const iters = Number(arg('iters', '8'));

const sel = await selectBackend('wasm-onednn');
const addon = activeOnednn()!;
console.log(`${sel.detail.split('; auto')[0]}; XNNPACK threads ${wasmThreadsInUse()}`);
const spec = { method, backbone, imageSize, way: 5, shot, query: 15 };
const ep = episodeImages(spec, makeEpisodes(spec, 1, 'onednn-step')[0]);

// Two identically initialised models, one per path, each with its own Adam state.
const paths = ['wasm', 'wasm+onednn'] as const;
const models = paths.map(() => {
  const m = buildBenchMethod(spec, 1);
  return { m, trainable: m.trainableVariables(), adam: new Adam() };
});
function step(i: 0 | 1): { loss: number; wall: number; cpu: number } {
  setOnednnActive(i === 1 ? addon : null);
  const { m, trainable, adam } = models[i];
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const lossT = trainingStep(m, trainable, adam, [ep], LEARNING_RATE);
  const loss = lossT.dataSync()[0];
  lossT.dispose();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { loss, wall, cpu: (c.user + c.system) / 1000 };
}

const first = [step(0), step(1)];
const rel = Math.abs(first[0].loss - first[1].loss) / Math.abs(first[0].loss);
console.log(`first loss: wasm ${first[0].loss.toPrecision(7)}, wasm+onednn ${first[1].loss.toPrecision(7)} (relative difference ${rel.toExponential(1)})`);
if (!(rel < 1e-4)) throw new Error('the two paths disagree on the first loss');
for (let k = 0; k < 2; k++) step(0), step(1); // warm-up: primitives built, heap grown
const wall: number[][] = [[], []];
const cpu: number[][] = [[], []];
for (let k = 0; k < iters; k++) {
  for (const i of [0, 1] as const) {
    const r = step(i);
    wall[i].push(r.wall);
    cpu[i].push(r.cpu);
  }
}
console.log(`${method} ${backbone} ${imageSize} px 5w${shot}s, ${iters} steps each, A B A B:`);
for (const i of [0, 1] as const) {
  console.log(`  ${paths[i].padEnd(12)} wall ${median(wall[i]).toFixed(1).padStart(8)} ms   process CPU ${median(cpu[i]).toFixed(1).padStart(8)} ms`);
}
console.log(`  speed-up (wasm / wasm+onednn): wall ${(median(wall[0]) / median(wall[1])).toFixed(2)}x, CPU ${(median(cpu[0]) / median(cpu[1])).toFixed(2)}x`);
