/**
 * The work under every Conv-4 step, one layer at a time, one thread on each side:
 *
 *   npx tsx bench/conv-peak.ts [--iters 8] [--no-install]
 *
 * The forward 3×3 convolution (stride 1, same padding, no bias) of each Conv-4 layer at 84 px and 32 px with 80
 * images (a 5-way 1-shot 15-query episode): ours through tfjs' wasm backend with the toolkit's training kernels
 * (Winograd F(4×4, 3×3) for ≥ 16 input channels, XNNPACK for the RGB layer), the peer through torch.conv2d in
 * channels_last (oneDNN's NHWC kernels, the peer's fastest setting in `npm run bench`) with glibc told to keep
 * freed memory (its 36 MB outputs would otherwise be page-faulted in on every call). Same seeded inputs and
 * filters on both sides; the outputs' sums are compared. Rate = 2·N·H·W·Cin·Cout·9 / time, the direct
 * convolution's flops, whatever algorithm a side uses, from the best of the timed calls. Writes results/bench/conv-peak-<date>.json; run it on an
 * otherwise idle machine.
 */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/backend/select.ts';
import { wasmThreadsInUse } from '../src/backend/wasm/threads.ts';
import { writeFileAtomic } from '../src/util/atomic.ts';
import { mulberry32 } from '../src/util/prng.ts';
import { machineInfo } from './lib/machine.ts';
import { findPeerPython, GLIBC_TUNABLES } from './lib/peer.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Layer {
  id: string;
  n: number;
  size: number;
  cin: number;
  cout: number;
}

const LAYERS: Layer[] = [
  { id: '84px/conv1', n: 80, size: 84, cin: 3, cout: 64 },
  { id: '84px/conv2', n: 80, size: 42, cin: 64, cout: 64 },
  { id: '84px/conv3', n: 80, size: 21, cin: 64, cout: 64 },
  { id: '84px/conv4', n: 80, size: 10, cin: 64, cout: 64 },
  { id: '32px/conv1', n: 80, size: 32, cin: 3, cout: 64 },
  { id: '32px/conv2', n: 80, size: 16, cin: 64, cout: 64 },
  { id: '32px/conv3', n: 80, size: 8, cin: 64, cout: 64 },
  { id: '32px/conv4', n: 80, size: 4, cin: 64, cout: 64 },
];

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

function seeded(length: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length }, () => r() * 2 - 1);
}

// x: NHWC, w: HWIO (tfjs' layouts); the peer permutes them to torch's and runs channels_last.
const PEER = String.raw`
import json, sys, time, numpy as np, torch
torch.set_num_threads(1)
iters = int(sys.argv[1])
out = []
for spec in json.loads(sys.argv[2]):
    n, s, ci, co = spec["n"], spec["size"], spec["cin"], spec["cout"]
    x = torch.from_numpy(np.fromfile(spec["x"], dtype=np.float32).reshape(n, s, s, ci)).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    w = torch.from_numpy(np.fromfile(spec["w"], dtype=np.float32).reshape(3, 3, ci, co)).permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        y = torch.nn.functional.conv2d(x, w, padding=1)
        times = []
        for _ in range(iters):
            t0 = time.perf_counter(); y = torch.nn.functional.conv2d(x, w, padding=1); float(y[0, 0, 0, 0]); times.append((time.perf_counter() - t0) * 1000)
    out.append({"id": spec["id"], "timesMs": times, "sum": float(y.double().sum())})
print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "mkldnn": torch.backends.mkldnn.is_available(), "layers": out}))
`;

async function main(): Promise<void> {
  const iters = Number(arg('iters', '8'));
  process.env.FEWSHOT_WASM_THREADS = '1';
  const sel = await selectBackend('wasm');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fewshot-conv-'));
  try {
    const ours: { id: string; timesMs: number[]; sum: number }[] = [];
    const specs = [];
    for (const [i, l] of LAYERS.entries()) {
      const xData = seeded(l.n * l.size * l.size * l.cin, 2 * i + 1);
      const wData = seeded(9 * l.cin * l.cout, 2 * i + 2).map((v) => v / Math.sqrt(9 * l.cin));
      await fs.writeFile(path.join(dir, `${i}.x`), Buffer.from(xData.buffer));
      await fs.writeFile(path.join(dir, `${i}.w`), Buffer.from(wData.buffer));
      specs.push({ ...l, x: path.join(dir, `${i}.x`), w: path.join(dir, `${i}.w`) });
      const x = tf.tensor4d(xData, [l.n, l.size, l.size, l.cin]);
      const w = tf.tensor4d(wData, [3, 3, l.cin, l.cout]);
      // Timed: the convolution alone. The wasm backend computes a kernel when it is dispatched (the helper thread's
      // share included), so the call returns with the output written; reading it back would copy the whole output
      // into JS (a slice of it too: it reads its source), which costs more than the convolution at 84 px and is no
      // part of a training step.
      const run = () => tf.conv2d(x, w, 1, 'same');
      const first = run();
      const all = first.dataSync();
      first.dispose();
      let sum = 0;
      for (let k = 0; k < all.length; k++) sum += all[k];
      const times: number[] = [];
      for (let k = 0; k < iters; k++) {
        const t0 = performance.now();
        const y = run();
        times.push(performance.now() - t0);
        y.dispose();
      }
      tf.dispose([x, w]);
      ours.push({ id: l.id, timesMs: times, sum });
      console.error(`ours ${l.id}: best ${Math.min(...times).toFixed(2)} ms`);
    }
    const found = findPeerPython({ install: !process.argv.includes('--no-install'), log: (m) => console.error(m) });
    if ('error' in found) throw new Error(found.error);
    const r = spawnSync(found.python, ['-c', PEER, String(iters), JSON.stringify(specs)], {
      encoding: 'utf8',
      env: { ...process.env, ...GLIBC_TUNABLES, OMP_NUM_THREADS: '1' },
    });
    if (r.status !== 0) throw new Error(`peer failed: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-3).join(' ')}`);
    const peer = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      torch: string;
      threads: number;
      mkldnn: boolean;
      layers: { id: string; timesMs: number[]; sum: number }[];
    };

    const layers = LAYERS.map((l) => {
      const flops = 2 * l.n * l.size * l.size * l.cin * l.cout * 9;
      const o = ours.find((x) => x.id === l.id)!;
      const p = peer.layers.find((x) => x.id === l.id)!;
      // The best of the timed calls: a ceiling, and the statistic least moved by this machine's page-fault storms
      // (medians are kept too).
      const om = Math.min(...o.timesMs);
      const pm = Math.min(...p.timesMs);
      return {
        ...l,
        directGflop: round(flops / 1e9, 3),
        ours: { bestMs: round(om), medianMs: round(median(o.timesMs)), gflops: round(flops / (om / 1000) / 1e9, 1), timesMs: o.timesMs.map((t) => round(t)) },
        peer: { bestMs: round(pm), medianMs: round(median(p.timesMs)), gflops: round(flops / (pm / 1000) / 1e9, 1), timesMs: p.timesMs.map((t) => round(t)) },
        sumRelativeDifference: Math.abs(o.sum - p.sum) / Math.max(1, Math.abs(p.sum)),
        ratio: round(pm / om, 3),
      };
    });
    const record = {
      what: 'forward 3x3 convolution of each Conv-4 layer (80 images), one thread each: tfjs wasm with the toolkit kernels vs torch.conv2d channels_last',
      command: `npx tsx bench/conv-peak.ts --iters ${iters}`,
      createdAt: new Date().toISOString(),
      machine: machineInfo(),
      ours: { backend: sel.detail, threads: wasmThreadsInUse() },
      peer: {
        python: found.how,
        torch: peer.torch,
        threads: peer.threads,
        mkldnn: peer.mkldnn,
        memoryFormat: 'channels_last',
        allocator: 'glibc with MALLOC_MMAP_THRESHOLD_/TRIM_THRESHOLD_/TOP_PAD_ (bench/lib/peer.ts)',
      },
      rate: 'GFLOP/s of the direct convolution (2*N*H*W*Cin*Cout*9 / best time), whatever algorithm each side runs',
      ratio: 'peer best ms / ours best ms over the timed calls (> 1: we are faster)',
      layers,
    };
    const out = path.join(REPO, 'results', 'bench', `conv-peak-${record.createdAt.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')}.json`);
    await writeFileAtomic(out, JSON.stringify(record, null, 1) + '\n');
    console.log('layer       ours best ms  GFLOP/s  peer best ms  GFLOP/s  ratio  sum diff');
    for (const l of layers) {
      console.log(
        `${l.id.padEnd(11)} ${l.ours.bestMs.toFixed(2).padStart(12)} ${l.ours.gflops.toFixed(1).padStart(8)} ${l.peer.bestMs.toFixed(2).padStart(13)} ${l.peer.gflops.toFixed(1).padStart(8)} ${l.ratio.toFixed(2).padStart(6)}  ${l.sumRelativeDifference.toExponential(1)}`,
      );
    }
    console.log(`-> ${path.relative(process.cwd(), out)}`);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
