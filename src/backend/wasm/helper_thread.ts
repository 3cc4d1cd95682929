/**
 * A second thread for the SIMD helper kernels (native/kernels.c), so the memory-bound parts of a training step
 * (Winograd transforms, batch norm, max-pool gradient) use both cores like XNNPACK's products do.
 *
 * Only with the threaded wasm build (FEWSHOT_WASM_THREADS >= 2): its heap is a shared WebAssembly.Memory, so a
 * Node worker can instantiate the same helper module on it and work on one half of a tensor while the main
 * thread does the other half. The kernels own no memory and no stack (build.sh checks), so two instances
 * running at once on disjoint ranges cannot interfere. Requests go through a small SharedArrayBuffer:
 * the main thread writes the worker's calls (export index + numeric arguments), bumps a sequence number and
 * notifies; it then runs its own calls and blocks (Atomics.wait) until the worker reports the same number.
 * The worker spins briefly between requests (a training step issues them back to back), then sleeps.
 */
import { Worker } from 'node:worker_threads';
import type { NativeKernels } from './native/signatures.ts';

/** One call of a helper kernel: its export name and arguments (pointers are heap byte offsets). */
export type NativeCall = [name: keyof NativeKernels, ...args: number[]];

const SEQ = 0;
const COUNT = 1;
const DONE = 2;
const FAILED = 3;
const ARGS_BYTE_OFFSET = 64;
const ARG_CAPACITY = 8192;
const HELPER_TIMEOUT_MS = 120_000;

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, control, names, spins } = workerData;
const exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
const fns = names.map((n) => exports[n]);
const ctrl = new Int32Array(control);
const args = new Float64Array(control, ${ARGS_BYTE_OFFSET});
let seen = 0;
for (;;) {
  for (let i = 0; i < spins && Atomics.load(ctrl, ${SEQ}) === seen; i++);
  Atomics.wait(ctrl, ${SEQ}, seen);
  const seq = Atomics.load(ctrl, ${SEQ});
  if (seq === seen) continue;
  seen = seq;
  if (seq < 0) break;
  try {
    const n = ctrl[${COUNT}];
    let p = 0;
    for (let c = 0; c < n; c++) {
      const f = fns[args[p]];
      const k = args[p + 1];
      const a = [];
      for (let j = 0; j < k; j++) a.push(args[p + 2 + j]);
      f(...a);
      p += 2 + k;
    }
  } catch (e) {
    Atomics.store(ctrl, ${FAILED}, 1);
  }
  Atomics.store(ctrl, ${DONE}, seq);
  Atomics.notify(ctrl, ${DONE});
}
`;

export class HelperThread {
  private readonly worker: Worker;
  private readonly ctrl: Int32Array;
  private readonly args: Float64Array;
  private readonly index: Map<string, number>;
  private seq = 0;
  private broken = false;

  constructor(
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    private readonly kernels: NativeKernels,
  ) {
    const names = WebAssembly.Module.exports(module)
      .filter((e) => e.kind === 'function')
      .map((e) => e.name);
    this.index = new Map(names.map((n, i) => [n, i]));
    const control = new SharedArrayBuffer(ARGS_BYTE_OFFSET + 8 * ARG_CAPACITY);
    this.ctrl = new Int32Array(control);
    this.args = new Float64Array(control, ARGS_BYTE_OFFSET);
    this.worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { module, memory, control, names, spins: 20000 } });
    this.worker.on('error', () => {
      this.broken = true;
    });
    // It only ever serves synchronous requests from this thread; it must not keep the process alive.
    this.worker.unref();
  }

  /** Runs `theirs` on the helper thread and `mine` here, concurrently; returns when both are done. */
  run(mine: NativeCall[], theirs: NativeCall[]): void {
    if (theirs.length === 0 || this.broken) {
      this.runHere([...mine, ...theirs]);
      return;
    }
    let p = 0;
    for (const [name, ...a] of theirs) {
      const fn = this.index.get(name);
      if (fn == null) throw new Error(`helper kernel ${name} is not exported`);
      if (p + 2 + a.length > ARG_CAPACITY) throw new Error('too many helper calls in one request');
      this.args[p] = fn;
      this.args[p + 1] = a.length;
      this.args.set(a, p + 2);
      p += 2 + a.length;
    }
    this.ctrl[COUNT] = theirs.length;
    const seq = ++this.seq;
    Atomics.store(this.ctrl, SEQ, seq);
    Atomics.notify(this.ctrl, SEQ);
    this.runHere(mine);
    // A request is half of one kernel (milliseconds to ~a second). The worker's 'error' event cannot be
    // delivered while this thread blocks, so a worker that died is detected by time instead of hanging.
    const deadline = Date.now() + HELPER_TIMEOUT_MS;
    for (;;) {
      const done = Atomics.load(this.ctrl, DONE);
      if (done === seq) break;
      if (this.broken || Date.now() > deadline) {
        this.broken = true;
        throw new Error(
          `the helper thread of the wasm kernels stopped responding (no answer in ${HELPER_TIMEOUT_MS / 1000} s); run with FEWSHOT_WASM_THREADS=1 to do without it`,
        );
      }
      Atomics.wait(this.ctrl, DONE, done, 1000);
    }
    if (Atomics.load(this.ctrl, FAILED) !== 0) {
      this.broken = true;
      throw new Error('a helper kernel failed on the helper thread');
    }
  }

  private runHere(calls: NativeCall[]): void {
    for (const [name, ...a] of calls) (this.kernels[name] as (...x: number[]) => void)(...a);
  }
}

/**
 * Splits [0, total) into two contiguous parts, the main thread's first (it starts while the helper wakes up,
 * so it takes slightly more), and builds each part's calls.
 */
export function splitCalls(total: number, calls: (start: number, end: number) => NativeCall[], minPerSide = 1): [NativeCall[], NativeCall[]] {
  if (total < 2 * minPerSide) return [calls(0, total), []];
  const cut = Math.min(total - minPerSide, Math.max(minPerSide, Math.round(total * 0.52)));
  return [calls(0, cut), calls(cut, total)];
}
