/**
 * oneDNN's direct against its Winograd convolution, per Conv-4 layer and pass (forward, input gradient, filter
 * gradient), through the addon on plain arrays (native/onednn; no tfjs):
 *
 *   FEWSHOT_ONEDNN_THREADS=1 npx tsx bench/onednn-conv.ts [--images 80] [--rounds 5] [--resnet12]
 *
 * (--resnet12: ResNet-12's 3x3 layers at 32 px, 64-160-320-640 channels, instead of Conv-4's.)
 *
 * Times are this thread's CPU (/proc/thread-self/schedstat; with 1 oneDNN thread all the work runs here), each
 * sample repeated until 200 ms have passed, median over rounds alternating the two algorithms. Winograd
 * includes its reorders between NHWC and the blocked layout, as the accelerator would pay them.
 */
import { readFileSync } from 'node:fs';
import { loadOnednn, convDims } from '../src/backend/wasm/onednn.ts';
import type { ConvGeometry } from '../src/backend/wasm/conv_geometry.ts';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const threadCpuNs = () => Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const loaded = await loadOnednn();
if ('reason' in loaded) throw new Error(`oneDNN accelerator unavailable: ${loaded.reason}`);
const { addon, info } = loaded;
const images = arg('images', 80);
const rounds = arg('rounds', 5);
console.log(`oneDNN ${info.version} ${info.isa}, ${info.threads} thread(s); ${images} images; thread CPU ms per call, median of ${rounds}`);

const layer = (size: number, ci: number, co = 64): ConvGeometry => ({
  batch: images,
  inHeight: size,
  inWidth: size,
  inChannels: ci,
  outHeight: size,
  outWidth: size,
  outChannels: co,
  filterHeight: 3,
  filterWidth: 3,
  strideHeight: 1,
  strideWidth: 1,
  padTop: 1,
  padLeft: 1,
  padBottom: 1,
  padRight: 1,
});
const layers = process.argv.includes('--resnet12')
  ? [layer(32, 64, 64), layer(16, 64, 160), layer(16, 160, 160), layer(8, 160, 320), layer(8, 320, 320), layer(4, 320, 640), layer(4, 640, 640)]
  : [layer(84, 3), layer(42, 64), layer(21, 64), layer(10, 64), layer(32, 3), layer(16, 64), layer(8, 64), layer(4, 64)];
for (const g of layers) {
  const xN = g.batch * g.inHeight * g.inWidth * g.inChannels;
  const wN = 9 * g.inChannels * g.outChannels;
  const yN = g.batch * g.outHeight * g.outWidth * g.outChannels;
  const heap = new Float32Array(xN + wN + yN + xN);
  for (let i = 0; i < heap.length; i++) heap[i] = Math.sin(i);
  const [x, w, y, dx] = [0, xN, xN + wN, xN + wN + yN];
  const wino = addon.winogradAvailable(convDims(g, 'winograd'));
  const passes: Array<[string, (alg: 'direct' | 'winograd') => void]> = [
    ['fwd', (alg) => addon.conv(heap, 0, x, w, y, convDims(g, alg))],
    ['bwd data', (alg) => addon.conv(heap, 1, y, w, dx, convDims(g, alg))],
    ['bwd filter', (alg) => addon.conv(heap, 2, x, y, w, convDims(g, alg))],
  ];
  const row: string[] = [];
  for (const [name, f] of passes) {
    const algs = wino ? (['direct', 'winograd'] as const) : (['direct'] as const);
    const t: Record<string, number[]> = { direct: [], winograd: [] };
    for (const a of algs) f(a); // build the primitives
    for (let r = 0; r < rounds; r++) {
      for (const a of algs) {
        const t0 = threadCpuNs();
        let n = 0;
        while (threadCpuNs() - t0 < 200e6) f(a), n++;
        t[a].push((threadCpuNs() - t0) / 1e6 / n);
      }
    }
    const d = median(t.direct);
    row.push(wino ? `${name} ${d.toFixed(2)} / ${median(t.winograd).toFixed(2)} (${(d / median(t.winograd)).toFixed(2)}x)` : `${name} ${d.toFixed(2)} / -`);
  }
  console.log(`${g.inHeight}x${g.inWidth}x${g.inChannels}->${g.outChannels}: direct / winograd: ${row.join(', ')}`);
}
