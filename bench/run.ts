/**
 * `npm run bench [-- --quick] [-- --only <ids>] [-- --threads 1,2] [-- --backend auto] [-- --with-wasm]`: the
 * toolkit side by side with a PyTorch-CPU peer doing the identical work, at each thread count asked for. Not part
 * of CI. See bench/README.md; the workload list is bench/lib/workloads.ts.
 *
 * Each of ours runs in its own node process (bench/lib/ours-worker.ts) on the engine a user gets (`auto`: the
 * oneDNN accelerator under wasm where it loads), optionally plain wasm beside it; then the peer (one python process
 * per allocator / wait-policy setting, bench/peer/torch_peer.py) at the same thread count, right after ours, so
 * load from other users of the machine hits both alike.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { DATA_ENV_VAR, locateDataset } from '../src/data/index.ts';
import { UserError } from '../src/util/errors.ts';
import { EPISODE_POOL, episodeFiles, INPUT_SEED, type BenchContext } from './lib/context.ts';
import { HEAD_SETTINGS } from './lib/heads.ts';
import { loadAverage, machineInfo, type MachineInfo } from './lib/machine.ts';
import { BENCH_BACKENDS, type BenchBackend } from './lib/ours-runner.ts';
import { allocatorSettings, findPeerPython, GLIBC_TUNABLES, installAllocators, PEER_OMP_WAIT_POLICY, PeerProcess } from './lib/peer.ts';
import { SCREEN_POLICY } from './lib/peer-search.ts';
import { FULL_POLICY, QUICK_POLICY } from './lib/policy.ts';
import { PEER_PREPARE_WORKERS } from './lib/prepare.ts';
import { stepTable, writeReport, type BenchReport, type HeadWorkloadResult, type StepWorkloadResult } from './lib/report.ts';
import { runMemoryWorkload, runPrepareWorkload } from './lib/throughput.ts';
import { runHeadWorkload, runStepWorkload } from './lib/timed.ts';
import { HEAD_DIM, HEAD_QUERY, selectWorkloads, workloads, type Workload } from './lib/workloads.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SHARED_DATASET = path.resolve(REPO, '../shared/datasets/mini-imagenet');
/** Where reports go by default: ignored by git, like `fewshot run`'s results (results-local/). */
const DEFAULT_OUT = 'results-local/bench';
const THREAD_CHOICES = [1, 2];

interface BenchOptions {
  quick: boolean;
  only: string[] | undefined;
  list: boolean;
  peer: boolean;
  install: boolean;
  peerSearch: boolean;
  data?: string;
  out: string;
  threads: number[];
  backend: BenchBackend;
  withWasm: boolean;
}

function parseThreads(raw: string): number[] {
  const list = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  if (!list.length || list.some((n) => !THREAD_CHOICES.includes(n)) || new Set(list).size !== list.length) {
    throw new UserError(`--threads ${raw} is not a list of thread counts`, `use 1, 2 or 1,2 (each workload runs at every count listed, both sides)`);
  }
  return list;
}

function parseOptions(): BenchOptions {
  const program = new Command('bench')
    .description('Side-by-side benchmark of the toolkit (tfjs wasm, oneDNN accelerator) against PyTorch-CPU')
    .option('--quick', 'fewer steps, 32 px only, prepare on the val archive only, 30 memory episodes')
    .option('--only <ids>', 'comma-separated workload id prefixes, e.g. train, eval/protonet-sla, train/metaoptnet-svm, prepare, memory')
    .option('--list', 'print the workload ids and exit')
    .option('--threads <list>', 'thread counts, each workload runs at every one (both sides: wasm + oneDNN threads, torch threads): 1, 2 or 1,2', '1,2')
    .option('--backend <engine>', `our engine: ${BENCH_BACKENDS.join(' | ')} (auto: wasm-onednn where the accelerator loads, as a user gets it)`, 'auto')
    .option('--with-wasm', 'also time ours on plain wasm beside the engine (the README table shows both)')
    .option('--no-peer', 'skip the PyTorch peer (ours only)')
    .option('--no-install', 'do not apt-get install python3-torch (and the allocators) when missing')
    .option('--no-peer-search', 'time the peer in one setting (glibc tunables, contiguous, PASSIVE) instead of searching for its fastest')
    .option('--data <dir>', `mini-ImageNet folder for the prepare workload (default: $${DATA_ENV_VAR}, else ${path.relative(REPO, SHARED_DATASET)})`)
    .option(
      '--out <dir>',
      `where the JSON goes (bench-<date>….json and latest.json); ${DEFAULT_OUT} is ignored by git, use results/bench for a run to commit`,
      DEFAULT_OUT,
    );
  program.parse();
  const o = program.opts<{
    quick?: boolean;
    only?: string;
    list?: boolean;
    peer: boolean;
    install: boolean;
    peerSearch: boolean;
    data?: string;
    out: string;
    threads: string;
    backend: string;
    withWasm?: boolean;
  }>();
  if (!(BENCH_BACKENDS as readonly string[]).includes(o.backend)) {
    throw new UserError(`--backend ${o.backend} is not an engine the bench times`, `use one of: ${BENCH_BACKENDS.join(', ')}`);
  }
  return {
    quick: !!o.quick,
    only: o.only
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    list: !!o.list,
    peer: o.peer,
    install: o.install,
    peerSearch: o.peerSearch,
    data: o.data,
    out: path.resolve(o.out),
    threads: parseThreads(o.threads),
    backend: o.backend as BenchBackend,
    withWasm: !!o.withWasm,
  };
}

const log = (msg: string) => process.stderr.write(`${msg}\n`);

/** Find (or install) the peer's python and describe the search it will run; undefined python: no peer. */
async function setupPeer(opts: BenchOptions, notes: string[]): Promise<{ python: string | undefined; info: Record<string, unknown> }> {
  if (!opts.peer) return { python: undefined, info: { used: false, reason: '--no-peer' } };
  const found = findPeerPython({ install: opts.install, log });
  if ('error' in found) {
    notes.push(`peer not run: ${found.error}`);
    return { python: undefined, info: { used: false, reason: found.error } };
  }
  if (opts.install) installAllocators(log);
  const probe = new PeerProcess(found.python, log);
  const hello = await probe.request({ op: 'hello' });
  await probe.close();
  const allocators = allocatorSettings();
  if (allocators.missing.length) notes.push(`peer allocators not installed, not tried: ${allocators.missing.join(', ')}`);
  const { ok: _ok, ...helloFields } = hello.ok ? hello : { ok: false, error: hello.error };
  const info: Record<string, unknown> = {
    used: true,
    how: found.how,
    search: {
      allocators: allocators.available,
      allocatorEnv: allocators.env,
      glibcTunables: GLIBC_TUNABLES,
      memoryFormats: ['contiguous', 'channels_last'],
      ompWaitPolicies: process.env.OMP_WAIT_POLICY ? [process.env.OMP_WAIT_POLICY] : [PEER_OMP_WAIT_POLICY, 'default'],
      threads: `fixed per run: ${opts.threads.join(' and ')} (torch.set_num_threads and OMP_NUM_THREADS/MKL_NUM_THREADS of the process)`,
      screenPolicy: opts.peerSearch ? SCREEN_POLICY : null,
      rule: opts.peerSearch
        ? 'greedy per workload and thread count: allocator (contiguous, PASSIVE), then channels_last, then the default OpenMP wait policy, each kept if its screening median is lower; the winner is timed under the full policy'
        : '--no-peer-search: glibc with the tunables, contiguous, PASSIVE',
      isolation:
        'peer processes exist only during the peer part of a workload (none while ours is timed) and are stopped with SIGSTOP except while answering a request',
    },
    ...helloFields,
  };
  log(`peer: ${found.how}; torch ${String(info.torch)}; allocators ${allocators.available.join(', ')}`);
  return { python: found.python, info };
}

type TimedResult = StepWorkloadResult | HeadWorkloadResult;

/** What a run has measured so far, from which the report (partial or complete) is made. */
interface RunState {
  opts: BenchOptions;
  createdAt: string;
  started: number;
  machine: MachineInfo;
  peerInfo: Record<string, unknown>;
  /** Ours' engine per thread count (the first worker that ran at it), e.g. `{ "1": {...}, "2": {...} }`. */
  engines: Record<string, unknown>;
  results: Record<string, unknown>[];
  timed: TimedResult[];
  notes: string[];
}

/** Notes the results themselves call for: ratios below 1, failures, engines other than the one asked for. */
function derivedNotes(state: RunState): string[] {
  const derived: string[] = [];
  const below = state.timed.filter((r) => r.ratio.best != null && r.ratio.best < 1);
  if (below.length) derived.push(`ours slower than the fastest peer setting on ${below.map((r) => `${r.id} at ${r.threads}t (${r.ratio.best})`).join(', ')}`);
  const failed = state.results.filter((r) => (r.ours as { ok: boolean } | undefined)?.ok === false);
  for (const r of failed)
    derived.push(`ours failed on ${String(r.id)}${r.threads ? ` (${String(r.threads)}t)` : ''}: ${String((r.ours as { error: string }).error)}`);
  const differs = state.timed.filter((r) => r.check.agrees === false || r.checkWasm?.agrees === false);
  if (differs.length)
    derived.push(
      `the first-loss / score check DIFFERS on ${differs.map((r) => `${r.id} (${r.threads}t)`).join(', ')}: the two sides did not compute the same step there`,
    );
  const engines = Object.values(state.engines) as { backend: string }[];
  if (state.opts.backend === 'auto' && engines.some((e) => e.backend === 'wasm')) {
    derived.push('auto ran plain wasm (the oneDNN accelerator did not load; see ours.engines[…].detail): the `ours` column is the wasm engine');
  }
  return derived;
}

function reportOf(state: RunState, pending: string[]): BenchReport {
  const { opts } = state;
  return {
    format: 'fewshot-bench',
    formatVersion: 3,
    createdAt: state.createdAt,
    mode: opts.quick ? 'quick' : 'full',
    threads: opts.threads,
    only: opts.only ?? null,
    wallSeconds: Math.round((performance.now() - state.started) / 100) / 10,
    machine: { ...state.machine, loadAverageAtEnd: loadAverage() },
    ours: { requested: opts.backend, withWasm: opts.withWasm, engines: state.engines, process: 'one node process per workload, thread count and engine' },
    peer: state.peerInfo,
    policy: {
      ...(opts.quick ? QUICK_POLICY : FULL_POLICY),
      episodesCycled: EPISODE_POOL,
      threads:
        'each timed workload runs at every thread count of `threads`, both sides: ours with FEWSHOT_WASM_THREADS and FEWSHOT_ONEDNN_THREADS set to it, the peer with torch.set_num_threads and OMP_NUM_THREADS',
      inputs: `seeded random uint8 pixels normalised with the mini-ImageNet statistics (seed "${INPUT_SEED}"), identical bytes on both sides`,
      weights: 'the toolkit builds the method (seed 1) and exports its initial weights; the peer loads them',
      timing: 'ms per episode = one step incl. reading back the loss (train) or scores + argmax accuracy (eval); input tensors are built before timing',
      ratio:
        'peer median ms (its fastest setting at that thread count, see peerSetting) / ours median ms (> 1: we are faster); `wasm`: the same against ours on plain wasm; prepare: ours images/s / peer images/s',
      heads: `MetaOptNet heads on seeded rectified-Gaussian embeddings (${HEAD_DIM}-d, ${HEAD_QUERY} queries per class, 20 joint classes), SVM C = ${HEAD_SETTINGS.svmC}, ridge lambda = ${HEAD_SETTINGS.ridgeLambda}; one step = K, dual solve, logits, cross-entropy and the gradients to support and query embeddings, read back; peer: bench/peer/qp_heads.py`,
      metaoptnet:
        'end to end (backbone + head): the experiments/metaoptnet-*-cpu.json protocol, Conv-4 trains 5-way 5-shot 6 queries, tests 5-way 5-shot 15 queries, SVM C 0.1 / ridge lambda 50, label smoothing 0.1, learnable logit scale; ResNet-12 at 32 px trains at 15 shots without SLA and 5 shots with SLA (15-shot SLA exhausts the wasm heap); peer: torch_peer.py composing qp_heads.py with its backbone',
    },
    workloads: state.results,
    notes: [...state.notes, ...derivedNotes(state)],
    ...(pending.length ? { pending } : {}),
  };
}

/** One workload at every thread count asked for (prepare and memory once). */
async function runWorkload(ctx: BenchContext, state: RunState, w: Workload): Promise<void> {
  if (w.kind === 'prepare') {
    state.results.push(await runPrepareWorkload(ctx, w));
    return;
  }
  if (w.kind === 'memory') {
    state.results.push(await runMemoryWorkload(ctx, w, state.opts.threads[state.opts.threads.length - 1]));
    return;
  }
  for (const threads of state.opts.threads) {
    ctx.log(`-- ${w.id} at ${threads} thread${threads > 1 ? 's' : ''} (load ${loadAverage().join(' ')})`);
    const { result, engine } = w.kind === 'head' ? await runHeadWorkload(ctx, w, threads) : await runStepWorkload(ctx, w, threads);
    const o = result.ours;
    if (o.ok && o.numTensorsAfter !== o.numTensorsBefore)
      ctx.notes.push(`${result.id} (${threads}t): ours leaked tensors (${o.numTensorsBefore} -> ${o.numTensorsAfter})`);
    if (engine) state.engines[String(threads)] ??= engine;
    state.timed.push(result);
    state.results.push(result as unknown as Record<string, unknown>);
  }
}

const signed = (x: unknown) => (typeof x === 'number' && x >= 0 ? `+${x}` : String(x));

function printSummary(state: RunState, report: BenchReport, file: string): void {
  if (state.timed.length) console.log(`\n${stepTable(state.timed)}`);
  for (const r of state.results) {
    if (r.kind === 'prepare') {
      const o = r.ours as { ok: boolean; imagesPerSecond?: number; wallSeconds?: number; images?: number };
      const p = r.peer as { ok: boolean; imagesPerSecond?: number; wallSeconds?: number } | null;
      const goal = r.goal as { met: boolean | null; oursProjectedSecondsFor60000: number | null };
      console.log(
        `\n${String(r.id)}: ours ${o.ok ? `${Math.round(o.imagesPerSecond!)} images/s (${o.images} in ${o.wallSeconds!.toFixed(1)} s${o.images === 60_000 ? '' : `, 60,000 in ~${goal.oursProjectedSecondsFor60000} s`}; goal 60,000 in 60 s ${goal.met ? 'met' : 'NOT met'})` : 'FAILED'}` +
          (p
            ? `; peer PIL ×${PEER_PREPARE_WORKERS} ${p.ok ? `${Math.round(p.imagesPerSecond!)} images/s (${p.wallSeconds!.toFixed(1)} s)` : 'FAILED'}; ratio ${String(r.ratio ?? '-')}`
            : ''),
      );
    } else if (r.kind === 'memory') {
      const o = r.ours as Record<string, unknown>;
      const p = r.peer as Record<string, unknown> | null;
      console.log(
        `\n${String(r.id)} over ${String(r.episodes)} episodes (${String(r.threads)}t): ours ${o.ok ? `tensors ${String(o.numTensorsBefore)} -> ${String(o.numTensorsAfter)} (${o.tensorsFlat ? 'flat' : 'NOT flat'}), RSS ${String(o.rssMiBBefore)} -> ${String(o.rssMiBAfter)} MiB (${signed(o.rssMiBGrowth)}, ${signed(o.rssMiBGrowthSecondHalf)} in the second half), ${String(o.msPerEpisode)} ms/episode` : 'FAILED'}` +
          (p
            ? `; peer (${String(p.episodes)} episodes, ${String(p.threads)} thread) RSS ${String(p.rssMiBBefore)} -> ${String(p.rssMiBAfter)} MiB, ${String(p.msPerEpisode)} ms/episode`
            : ''),
      );
    }
  }
  if (report.notes.length) console.log(`\nnotes:\n${report.notes.map((n) => `- ${n}`).join('\n')}`);
  console.log(`\nwall ${report.wallSeconds} s; written ${path.relative(process.cwd(), file)} and latest.json`);
}

async function main(): Promise<void> {
  const opts = parseOptions();
  const all = workloads(opts.quick);
  if (opts.list) {
    console.log(all.map((w) => w.id).join('\n'));
    return;
  }
  const selected = selectWorkloads(all, opts.only);
  const dataset = selected.some((w) => w.kind === 'prepare') ? locateDataset(opts.data ?? (process.env[DATA_ENV_VAR] ? undefined : SHARED_DATASET)) : undefined;
  const state: RunState = {
    opts,
    createdAt: new Date().toISOString(),
    started: performance.now(),
    machine: machineInfo(),
    peerInfo: {},
    engines: {},
    results: [],
    timed: [],
    notes: [],
  };
  const { machine, notes } = state;
  log(
    `bench (${opts.quick ? 'quick' : 'full'}, ${opts.backend}${opts.withWasm ? ' + wasm' : ''}, threads ${opts.threads.join(',')}): ${selected.length} workloads on ${machine.cpuModel} ×${machine.logicalCpus}, load average ${machine.loadAverageAtStart.join(' ')}`,
  );
  if (machine.loadAverageAtStart[0] > machine.logicalCpus * 0.5) {
    notes.push(
      `the machine was busy at start (1-min load ${machine.loadAverageAtStart[0]} on ${machine.logicalCpus} CPUs): other users' work slows both sides; compare ratios, not absolute times`,
    );
  }
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'fewshot-bench-'));
  const onSignal = () => void fs.rm(work, { recursive: true, force: true }).finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  try {
    const peer = await setupPeer(opts, notes);
    state.peerInfo = peer.info;
    const policy = opts.quick ? QUICK_POLICY : FULL_POLICY;
    const memory = opts.quick ? { warmup: 2, steps: 30, sampleEvery: 10 } : { warmup: 5, steps: 500, sampleEvery: 50 };
    const ctx: BenchContext = {
      work,
      python: peer.python,
      quick: opts.quick,
      policy,
      memory,
      peerSearch: opts.peerSearch,
      backend: opts.backend,
      withWasm: opts.withWasm,
      dataset,
      log,
      notes,
      inputsFor: episodeFiles(work),
    };
    for (const [index, w] of selected.entries()) {
      // What is measured so far is on disk before each workload: a bench stopped half-way keeps it.
      if (index > 0)
        await writeReport(
          opts.out,
          reportOf(
            state,
            selected.slice(index).map((x) => x.id),
          ),
        );
      log(`\n== ${w.id}`);
      await runWorkload(ctx, state, w);
    }
  } finally {
    await fs.rm(work, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
  }
  const report = reportOf(state, []);
  const file = await writeReport(opts.out, report);
  printSummary(state, report, file);
}

main().catch((err: unknown) => {
  if (err instanceof UserError) {
    console.error(`error: ${err.problem}\n  fix: ${err.fix}`);
    process.exit(2);
  }
  console.error(err);
  process.exit(1);
});
