/**
 * `npm run bench [-- --quick] [-- --only <ids>]`: the toolkit (tfjs, wasm backend) side by side with a PyTorch-CPU
 * peer doing the identical work. Not part of CI. See bench/README.md.
 *
 * Workloads (ids are what --only matches, by prefix):
 *   train/<method>/<S>px/5w<K>s   one meta-training step (trainingStep + Adam) per episode, 15 queries per class
 *   eval/<method>/<S>px/5w<K>s    one evaluation episode (forward in BN eval mode, prototypes, argmax)
 *   prepare/84px                  `data prepare` throughput on the real mini-ImageNet archives
 *   head/<head>/<V>v              a MetaOptNet head (SVM or ridge) on fixed embeddings at V dual variables: K = XXᵀ,
 *                                 dual solve, logits, cross-entropy, gradients to the embeddings (bench/lib/heads.ts)
 *   memory/protonet/32px/5w1s     live tensors and RSS before/after 500 training episodes
 * with <method> protonet | protonet-sla, S 32 | 84, K 1 | 5. Each of ours runs in its own node process
 * (bench/lib/ours-worker.ts); the peer is one long-lived python process (bench/peer/torch_peer.py) asked for
 * 2 threads, then 1 thread, right after ours, so load from other users of the machine hits both alike.
 */
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { DATA_ENV_VAR, locateDataset } from '../src/data/index.ts';
import { UserError } from '../src/util/errors.ts';
import { makeEpisodes, writeEpisodesFile } from './lib/inputs.ts';
import { hostBusyFraction, loadAverage, machineInfo } from './lib/machine.ts';
import type { BenchBackbone, BenchMethodName, MethodSpec, WeightEntry } from './lib/ours.ts';
import { runOursWorkload, type OursWorkerResult } from './lib/ours-runner.ts';
import { allocatorSettings, findPeerPython, GLIBC_TUNABLES, installAllocators, PEER_OMP_WAIT_POLICY, PeerProcess, processSetting, type PeerResponse } from './lib/peer.ts';
import { SCREEN_POLICY, searchPeer } from './lib/peer-search.ts';
import { FULL_POLICY, QUICK_POLICY, type StepPolicy } from './lib/policy.ts';
import {
  makeQuickPrepareSource,
  PEER_PREPARE_WORKERS,
  PREPARE_GOAL_IMAGES_PER_SECOND,
  PREPARE_IMAGE_SIZE,
  runOursPrepare,
  runPeerPrepare,
  type PrepareSource,
} from './lib/prepare.ts';
import { stepTable, writeReport, type AgreementCheck, type BenchReport, type HeadWorkloadResult, type SideResult, type StepWorkloadResult } from './lib/report.ts';
import { dualVariables, HEAD_SETTINGS, makeHeadEpisodes, type BenchHeadName, type HeadSpec, type HeadStepValue } from './lib/heads.ts';
import { roundSummary, summarize } from './lib/stats.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SHARED_DATASET = path.resolve(REPO, '../shared/datasets/mini-imagenet');
const WAY = 5;
const QUERY = 15;
const SLA_ROTATIONS = 4;
const METHOD_SEED = 1;
const INPUT_SEED = 'fewshot-bench';
/** Distinct seeded episodes each workload cycles through. */
const EPISODE_POOL = 2;
/** Peer thread counts the search tries, the first one first. */
const PEER_THREADS = [2, 1];
/**
 * The peer's memory run is a reference only: 1 thread (its RSS does not depend on threads, and 2 threads crawl on
 * a busy machine) and fewer episodes than ours, to keep the suite's wall time down.
 */
const PEER_MEMORY_THREADS = 1;
const PEER_MEMORY_STEPS = { full: 200, quick: 30 };
const MEMORY_SPEC: MethodSpec = { method: 'protonet', imageSize: 32, way: WAY, shot: 1, query: QUERY };
/** Relative difference below which both sides computed the same thing (float32, different conv algorithms). */
const AGREEMENT_TOLERANCE = 1e-3;

type Kind = 'train' | 'eval' | 'head' | 'prepare' | 'memory';
interface Workload {
  id: string;
  kind: Kind;
  spec?: MethodSpec;
  headSpec?: HeadSpec;
}

/**
 * The heads at the sizes SLA gives them (5-way × 4 rotations = 20 joint classes): 5-shot (2,000 dual variables)
 * and MetaOptNet's 15 training shots (6,000), 6 queries per class, 2,560-d embeddings (ResNet-12 at 32 px).
 */
const HEAD_SHOTS = [5, 15];
const HEAD_DIM = 2560;
const HEAD_QUERY = 6;
const HEAD_INPUT_SEED = 11;

/**
 * ResNet-12 episodes: 5-way 1-shot with 15 queries, and with SLA at 84 px also 6 queries per class (MetaOptNet's
 * training query count), the largest SLA episode at 84 px that fits our 4 GiB wasm heap (see bench/README.md).
 */
const RESNET_EPISODES: { imageSize: number; method: BenchMethodName; query: number }[] = [
  { imageSize: 32, method: 'protonet', query: QUERY },
  { imageSize: 32, method: 'protonet-sla', query: QUERY },
  { imageSize: 84, method: 'protonet', query: QUERY },
  { imageSize: 84, method: 'protonet-sla', query: QUERY },
  { imageSize: 84, method: 'protonet-sla', query: 6 },
];

function workloads(quick: boolean): Workload[] {
  const sizes = quick ? [32] : [32, 84];
  const list: Workload[] = [];
  for (const kind of ['train', 'eval'] as const) {
    for (const method of ['protonet', 'protonet-sla'] as BenchMethodName[]) {
      for (const imageSize of sizes) {
        for (const shot of [1, 5]) list.push({ id: `${kind}/${method}/${imageSize}px/${WAY}w${shot}s`, kind, spec: { method, imageSize, way: WAY, shot, query: QUERY } });
      }
    }
  }
  if (!quick) {
    const backbone: BenchBackbone = 'resnet12';
    for (const kind of ['train', 'eval'] as const) {
      for (const { imageSize, method, query } of RESNET_EPISODES) {
        const id = `${kind}/${backbone}/${method}/${imageSize}px/${WAY}w1s${query === QUERY ? '' : `${query}q`}`;
        list.push({ id, kind, spec: { method, backbone, imageSize, way: WAY, shot: 1, query } });
      }
    }
  }
  for (const head of ['metaoptnet-svm', 'metaoptnet-rr'] as BenchHeadName[]) {
    for (const shot of quick ? HEAD_SHOTS.slice(0, 1) : HEAD_SHOTS) {
      const headSpec: HeadSpec = { head, way: WAY, shot, query: HEAD_QUERY, rotations: SLA_ROTATIONS, dim: HEAD_DIM };
      list.push({ id: `head/${head}/${dualVariables(headSpec)}v`, kind: 'head', headSpec });
    }
  }
  list.push({ id: `prepare/${PREPARE_IMAGE_SIZE}px`, kind: 'prepare' });
  list.push({ id: `memory/${MEMORY_SPEC.method}/${MEMORY_SPEC.imageSize}px/${WAY}w${MEMORY_SPEC.shot}s`, kind: 'memory', spec: MEMORY_SPEC });
  return list;
}

function selectWorkloads(all: Workload[], only: string[] | undefined): Workload[] {
  if (!only) return all;
  for (const prefix of only) {
    if (!all.some((w) => w.id.startsWith(prefix))) {
      throw new UserError(`--only ${prefix} matches no workload`, `use id prefixes of: ${all.map((w) => w.id).join(', ')} (see --list)`);
    }
  }
  return all.filter((w) => only.some((prefix) => w.id.startsWith(prefix)));
}

const log = (msg: string) => process.stderr.write(`${msg}\n`);
const mib = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;
const signed = (x: unknown) => (typeof x === 'number' && x >= 0 ? `+${x}` : String(x));
const relDiff = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-12);

function oursSide(res: OursWorkerResult): SideResult {
  if (!res.ok) return { ok: false, error: res.error };
  const r = res as unknown as { wasmThreads: number; timesMs: number[]; warmup: { ms: number }[]; numTensorsBefore: number; numTensorsAfter: number };
  return {
    ok: true,
    threads: r.wasmThreads,
    msPerEpisode: roundSummary(summarize(r.timesMs)),
    warmupMs: r.warmup.map((w) => Math.round(w.ms)),
    numTensorsBefore: r.numTensorsBefore,
    numTensorsAfter: r.numTensorsAfter,
  };
}

function peerSide(res: PeerResponse): SideResult {
  if (!res.ok) return { ok: false, error: res.error };
  const r = res as unknown as { threads: number; timesMs: number[]; warmup: { ms: number }[]; rssBytes: number };
  return { ok: true, threads: r.threads, msPerEpisode: roundSummary(summarize(r.timesMs)), warmupMs: r.warmup.map((w) => Math.round(w.ms)), rssMiB: mib(r.rssBytes) };
}

/** The fields every timed workload records about both sides: timings, the peer's winning setting, the ratio. */
function comparedSides(ours: OursWorkerResult, oursHostBusy: number | null, search: Awaited<ReturnType<typeof searchPeer>> | undefined) {
  const oursResult = oursSide(ours);
  const peer: Record<string, SideResult> = search?.full ? { best: peerSide(search.full) } : {};
  const ratio = Object.fromEntries(
    Object.entries(peer).map(([k, p]) => [k, p.ok && oursResult.ok ? Math.round((p.msPerEpisode.median / oursResult.msPerEpisode.median) * 1000) / 1000 : null]),
  );
  return {
    hostBusyBefore: { ours: oursHostBusy, peer: search?.hostBusyBeforeFull ?? null },
    ours: oursResult,
    peer,
    peerSetting: search?.bestSettingId ?? null,
    peerScreen: search?.screen ?? [],
    peerProcesses: search?.processes ?? [],
    ratio,
  };
}

/** Train: the first loss (same weights, same episode) and the warm-up loss trajectory must agree. */
function trainCheck(ours: OursWorkerResult, peer: PeerResponse | undefined): AgreementCheck {
  const what = 'first training loss (same initial weights and episode)';
  const oursLosses = ours.ok ? (ours.warmup as { value: number }[]).map((w) => w.value) : [];
  const peerLosses = peer?.ok ? (peer.warmup as { value: number }[]).map((w) => w.value) : [];
  if (!oursLosses.length || !peerLosses.length) return { what, ours: oursLosses[0] ?? null, peer: peerLosses[0] ?? null, relDiff: null, agrees: null };
  const d = relDiff(oursLosses[0], peerLosses[0]);
  const n = Math.min(oursLosses.length, peerLosses.length);
  const trajectory = Math.max(...oursLosses.slice(0, n).map((l, i) => relDiff(l, peerLosses[i])));
  return {
    what,
    ours: oursLosses[0],
    peer: peerLosses[0],
    relDiff: d,
    agrees: d < AGREEMENT_TOLERANCE,
    note: `warm-up losses ours [${oursLosses.map((l) => l.toPrecision(5)).join(', ')}] peer [${peerLosses.map((l) => l.toPrecision(5)).join(', ')}]; max rel diff over ${n} steps ${trajectory.toExponential(1)}`,
  };
}

/** Eval: scores of the first episode in the headline mode (plain, or SLA+AG) and their argmax must agree. */
function evalCheck(ours: OursWorkerResult, peer: PeerResponse | undefined): AgreementCheck {
  const what = 'first-episode query scores, headline mode (max |diff| / max |score|)';
  if (!ours.ok || !peer?.ok) return { what, ours: null, peer: null, relDiff: null, agrees: null };
  const oursScores = ours.firstScores as Record<string, number[][]>;
  const peerScores = peer.firstScores as Record<string, number[][]>;
  const mode = 'ag' in oursScores ? 'ag' : 'plain';
  const a = oursScores[mode].flat();
  const b = peerScores[mode]?.flat() ?? [];
  if (a.length !== b.length) return { what, ours: null, peer: null, relDiff: null, agrees: false, note: `mode ${mode}: ${a.length} vs ${b.length} scores` };
  const scale = Math.max(...a.map(Math.abs), ...b.map(Math.abs), 1e-12);
  const d = Math.max(...a.map((x, i) => Math.abs(x - b[i]))) / scale;
  const rows = oursScores[mode].length;
  const argmax = (r: number[]) => r.indexOf(Math.max(...r));
  const same = oursScores[mode].filter((r, i) => argmax(r) === argmax(peerScores[mode][i])).length;
  const oursAcc = (ours.warmup as { value: Record<string, number> }[])[0].value[mode];
  const peerAcc = (peer.warmup as { value: Record<string, number> }[])[0].value[mode];
  return { what, ours: oursAcc, peer: peerAcc, relDiff: d, agrees: d < AGREEMENT_TOLERANCE, note: `mode ${mode}: argmax equal on ${same}/${rows} queries; ours/peer fields are first-episode accuracies` };
}

/** Head: the first loss (same embeddings) must agree; the gradient norms are compared in the note. */
function headCheck(ours: OursWorkerResult, peer: PeerResponse | undefined): AgreementCheck {
  const what = 'first loss of the head (same embeddings), with the gradient norms in the note';
  const o = ours.ok ? (ours.warmup as { value: HeadStepValue }[])[0]?.value : undefined;
  const p = peer?.ok ? (peer.warmup as { value: HeadStepValue }[])[0]?.value : undefined;
  if (!o || !p) return { what, ours: o?.loss ?? null, peer: p?.loss ?? null, relDiff: null, agrees: null };
  const d = relDiff(o.loss, p.loss);
  const gs = relDiff(o.supportGradNorm, p.supportGradNorm);
  const gq = relDiff(o.queryGradNorm, p.queryGradNorm);
  return {
    what,
    ours: o.loss,
    peer: p.loss,
    relDiff: d,
    agrees: d < AGREEMENT_TOLERANCE && gs < AGREEMENT_TOLERANCE && gq < AGREEMENT_TOLERANCE,
    note: `|dL/dsupport| ours ${o.supportGradNorm.toPrecision(6)} peer ${p.supportGradNorm.toPrecision(6)} (rel diff ${gs.toExponential(1)}); |dL/dquery| ours ${o.queryGradNorm.toPrecision(6)} peer ${p.queryGradNorm.toPrecision(6)} (rel diff ${gq.toExponential(1)})`,
  };
}

async function main(): Promise<void> {
  const program = new Command('bench')
    .description('Side-by-side benchmark of the toolkit (tfjs wasm) against PyTorch-CPU')
    .option('--quick', 'fewer steps, 32 px only, prepare on the val archive only, 30 memory episodes')
    .option('--only <ids>', 'comma-separated workload id prefixes, e.g. train, eval/protonet-sla, prepare, memory')
    .option('--list', 'print the workload ids and exit')
    .option('--no-peer', 'skip the PyTorch peer (ours only)')
    .option('--no-install', 'do not apt-get install python3-torch (and the allocators) when missing')
    .option('--no-peer-search', 'time the peer in one setting (glibc tunables, 2 threads) instead of searching for its fastest')
    .option('--data <dir>', `mini-ImageNet folder for the prepare workload (default: $${DATA_ENV_VAR}, else ${path.relative(REPO, SHARED_DATASET)})`)
    .option('--out <dir>', 'where the JSON goes', path.join(REPO, 'results/bench'));
  program.parse();
  const opts = program.opts<{ quick?: boolean; only?: string; list?: boolean; peer: boolean; install: boolean; peerSearch: boolean; data?: string; out: string }>();
  const quick = !!opts.quick;
  const all = workloads(quick);
  if (opts.list) {
    console.log(all.map((w) => w.id).join('\n'));
    return;
  }
  const only = opts.only?.split(',').map((s) => s.trim()).filter(Boolean);
  const selected = selectWorkloads(all, only);
  const policy: StepPolicy = quick ? QUICK_POLICY : FULL_POLICY;
  const memory = quick ? { warmup: 2, steps: 30, sampleEvery: 10 } : { warmup: 5, steps: 500, sampleEvery: 50 };
  const dataset = selected.some((w) => w.kind === 'prepare')
    ? locateDataset(opts.data ?? (process.env[DATA_ENV_VAR] ? undefined : SHARED_DATASET))
    : undefined;

  const started = performance.now();
  const createdAt = new Date().toISOString();
  const machine = machineInfo();
  log(`bench (${quick ? 'quick' : 'full'}): ${selected.length} workloads on ${machine.cpuModel} ×${machine.logicalCpus}, load average ${machine.loadAverageAtStart.join(' ')}`);
  const notes: string[] = [];
  if (machine.loadAverageAtStart[0] > machine.logicalCpus * 0.5) {
    notes.push(`the machine was busy at start (1-min load ${machine.loadAverageAtStart[0]} on ${machine.logicalCpus} CPUs): other users' work slows both sides; compare ratios, not absolute times`);
  }

  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'fewshot-bench-'));
  let peerInfo: Record<string, unknown> = { used: false };
  let oursInfo: Record<string, unknown> = {};
  const results: Record<string, unknown>[] = [];
  const stepResults: Array<StepWorkloadResult | HeadWorkloadResult> = [];
  /** A timed (train / eval / head) workload's result, with a note if ours leaked tensors over its steps. */
  const recordTimed = (result: StepWorkloadResult | HeadWorkloadResult) => {
    const o = result.ours;
    if (o.ok && o.numTensorsAfter !== o.numTensorsBefore) notes.push(`${result.id}: ours leaked tensors (${o.numTensorsBefore} -> ${o.numTensorsAfter})`);
    stepResults.push(result);
    results.push(result as unknown as Record<string, unknown>);
  };
  /** The report of what has been measured so far; `pending`: the selected workloads still to come. */
  const reportOf = (pending: string[]): BenchReport => {
    const derived: string[] = [];
    const oneThreadWon = stepResults.filter((r) => r.peerSetting?.endsWith(' 1 thread'));
    if (oneThreadWon.length) {
      derived.push(`the peer was fastest with 1 thread on ${oneThreadWon.length} of ${stepResults.length} workloads (${oneThreadWon.map((r) => r.id).join(', ')}): on a busy machine two OpenMP threads lose more at barriers than they gain`);
    }
    const below = stepResults.filter((r) => r.ratio.best != null && r.ratio.best < 1);
    if (below.length) derived.push(`ours slower than the fastest peer setting on ${below.map((r) => `${r.id} (${r.ratio.best})`).join(', ')}`);
    const failed = results.filter((r) => (r.ours as { ok: boolean } | undefined)?.ok === false).map((r) => `${String(r.id)}: ${String((r.ours as { error: string }).error)}`);
    for (const f of failed) derived.push(`ours failed on ${f}`);
    if (oursInfo.threads === 1) {
      derived.push('ours ran single-threaded (FEWSHOT_WASM_THREADS=1 or a 1-CPU machine); the peer 1t column compares per core, the 2t column compares against PyTorch using the whole machine');
    }
    return {
      format: 'fewshot-bench',
      formatVersion: 2,
      createdAt,
      mode: quick ? 'quick' : 'full',
      only: only ?? null,
      wallSeconds: Math.round((performance.now() - started) / 100) / 10,
      machine: { ...machine, loadAverageAtEnd: loadAverage() },
      ours: oursInfo,
      peer: peerInfo,
      policy: {
        ...policy,
        episodesCycled: EPISODE_POOL,
        inputs: `seeded random uint8 pixels normalised with the mini-ImageNet statistics (seed "${INPUT_SEED}"), identical bytes on both sides`,
        weights: 'the toolkit builds the method (seed 1) and exports its initial weights; the peer loads them',
        timing: 'ms per episode = one step incl. reading back the loss (train) or scores + argmax accuracy (eval); input tensors are built before timing',
        ratio: 'peer median ms (its fastest setting, see peerSetting) / ours median ms (> 1: we are faster); prepare: ours images/s / peer images/s',
        heads: `MetaOptNet heads on seeded rectified-Gaussian embeddings (${HEAD_DIM}-d, ${HEAD_QUERY} queries per class, 20 joint classes), SVM C = ${HEAD_SETTINGS.svmC}, ridge lambda = ${HEAD_SETTINGS.ridgeLambda}; one step = K, dual solve, logits, cross-entropy and the gradients to support and query embeddings, read back; peer: bench/peer/qp_heads.py`,
      },
      workloads: results,
      notes: [...notes, ...derived],
      ...(pending.length ? { pending } : {}),
    };
  };
  const onSignal = () => {
    void fs.rm(work, { recursive: true, force: true }).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  try {
    let python: string | undefined;
    if (opts.peer) {
      const found = findPeerPython({ install: opts.install, log });
      if ('error' in found) {
        notes.push(`peer not run: ${found.error}`);
        peerInfo = { used: false, reason: found.error };
      } else {
        python = found.python;
        if (opts.install) installAllocators(log);
        const probe = new PeerProcess(found.python, log);
        const hello = await probe.request({ op: 'hello' });
        await probe.close();
        const allocators = allocatorSettings();
        if (allocators.missing.length) notes.push(`peer allocators not installed, not tried: ${allocators.missing.join(', ')}`);
        peerInfo = {
          used: true,
          how: found.how,
          search: {
            allocators: allocators.available,
            allocatorEnv: allocators.env,
            glibcTunables: GLIBC_TUNABLES,
            memoryFormats: ['contiguous', 'channels_last'],
            ompWaitPolicies: process.env.OMP_WAIT_POLICY ? [process.env.OMP_WAIT_POLICY] : [PEER_OMP_WAIT_POLICY, 'default'],
            threads: PEER_THREADS,
            screenPolicy: opts.peerSearch ? SCREEN_POLICY : null,
            rule: opts.peerSearch
              ? 'greedy per workload: allocator (2 threads, contiguous, PASSIVE), then channels_last, then the default OpenMP wait policy, then 1 thread, each kept if its screening median is lower; the winner is timed under the full policy'
              : '--no-peer-search: glibc with the tunables, contiguous, PASSIVE, 2 threads',
            isolation: 'peer processes exist only during the peer part of a workload (none while ours is timed) and are stopped with SIGSTOP except while answering a request',
          },
          ...(hello.ok ? hello : { error: hello.error }),
        };
        delete peerInfo.ok;
        log(`peer: ${found.how}; torch ${String(peerInfo.torch)}; allocators ${allocators.available.join(', ')}`);
      }
    } else peerInfo = { used: false, reason: '--no-peer' };

    // Seeded episodes per (size, shot), written once and shared by train/eval, plain/SLA, ours/peer.
    const inputFiles = new Map<string, string>();
    const inputsFor = async (spec: MethodSpec): Promise<string> => {
      const key = `${spec.imageSize}px-${spec.way}w${spec.shot}s${spec.query}q`;
      let file = inputFiles.get(key);
      if (!file) {
        file = path.join(work, `episodes-${key}.f32`);
        await writeEpisodesFile(file, makeEpisodes(spec, EPISODE_POOL, `${INPUT_SEED}/${key}`));
        inputFiles.set(key, file);
      }
      return file;
    };

    for (const [index, w] of selected.entries()) {
      // What is measured so far is on disk before each workload: a bench stopped half-way keeps it.
      if (index > 0) await writeReport(path.resolve(opts.out), reportOf(selected.slice(index).map((x) => x.id)));
      const tag = w.id.replace(/\//g, '_');
      const load = loadAverage();
      log(`\n== ${w.id} (load ${load.join(' ')})`);
      if (w.kind === 'train' || w.kind === 'eval') {
        const spec = w.spec!;
        const inputsFile = await inputsFor(spec);
        const weightsFile = path.join(work, `${tag}.weights.f32`);
        const t0 = performance.now();
        const oursHostBusy = await hostBusyFraction();
        const ours = await runOursWorkload({ op: w.kind, spec, seed: METHOD_SEED, inputsFile, episodes: EPISODE_POOL, weightsFile, policy }, work, tag);
        log(`ours: ${ours.ok ? `median ${summarize(ours.timesMs as number[]).median.toFixed(1)} ms` : `FAILED: ${ours.error}`} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
        if (ours.ok && !oursInfo.backendDetail) oursInfo = { backendDetail: ours.backendDetail, threads: ours.wasmThreads, tfjsBackendWasm: ours.tfjsBackendWasm, process: 'one node process per workload' };
        const weightsMeta = existsSync(`${weightsFile}.json`) ? (JSON.parse(await fs.readFile(`${weightsFile}.json`, 'utf8')) as WeightEntry[]) : undefined;
        let search: Awaited<ReturnType<typeof searchPeer>> | undefined;
        // A workload ours cannot run (heap exhausted) is not timed on the peer either: there is nothing to compare.
        if (python && weightsMeta && ours.ok) {
          const t1 = performance.now();
          search = await searchPeer(python, { op: w.kind, ...spec, backbone: spec.backbone ?? 'conv4', episodes: EPISODE_POOL, inputs: inputsFile, weights: weightsFile, weightsMeta }, policy, log, {
            screen: opts.peerSearch,
            threads: PEER_THREADS,
          });
          log(`peer: ${((performance.now() - t1) / 1000).toFixed(1)} s`);
        } else if (python && !ours.ok) notes.push(`${w.id}: ours failed, the peer was not timed`);
        const sides = comparedSides(ours, oursHostBusy, search);
        const result: StepWorkloadResult = {
          id: w.id,
          kind: w.kind,
          method: spec.method,
          imageSize: spec.imageSize,
          way: spec.way,
          shot: spec.shot,
          query: spec.query,
          backbone: spec.backbone ?? 'conv4',
          imagesPerEpisode: (spec.way * (spec.shot + spec.query)) * (spec.method === 'protonet-sla' ? SLA_ROTATIONS : 1),
          loadAverageAtStart: load,
          ...sides,
          check: w.kind === 'train' ? trainCheck(ours, search?.full) : evalCheck(ours, search?.full),
        };
        recordTimed(result);
      } else if (w.kind === 'head') {
        const headSpec = w.headSpec!;
        const inputsFile = path.join(work, `${tag}.embeddings.f32`);
        await writeEpisodesFile(inputsFile, makeHeadEpisodes(headSpec, EPISODE_POOL, HEAD_INPUT_SEED));
        const t0 = performance.now();
        const oursHostBusy = await hostBusyFraction();
        const ours = await runOursWorkload({ op: 'head', headSpec, seed: METHOD_SEED, inputsFile, episodes: EPISODE_POOL, weightsFile: path.join(work, `${tag}.unused`), policy }, work, tag);
        log(`ours: ${ours.ok ? `median ${summarize(ours.timesMs as number[]).median.toFixed(1)} ms` : `FAILED: ${ours.error}`} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
        let search: Awaited<ReturnType<typeof searchPeer>> | undefined;
        if (python && ours.ok) {
          const t1 = performance.now();
          search = await searchPeer(python, { op: 'head', ...headSpec, episodes: EPISODE_POOL, inputs: inputsFile, svmC: HEAD_SETTINGS.svmC, ridgeLambda: HEAD_SETTINGS.ridgeLambda, scale: HEAD_SETTINGS.scale }, policy, log, {
            screen: opts.peerSearch,
            threads: PEER_THREADS,
            memoryFormat: false,
          });
          log(`peer: ${((performance.now() - t1) / 1000).toFixed(1)} s`);
        }
        const sides = comparedSides(ours, oursHostBusy, search);
        const result: HeadWorkloadResult = {
          id: w.id,
          kind: 'head',
          ...headSpec,
          dualVariables: dualVariables(headSpec),
          loadAverageAtStart: load,
          ...sides,
          check: headCheck(ours, search?.full),
          ...(search?.full?.ok && Array.isArray(search.full.solverIterations) && search.full.solverIterations.length ? { peerSolverIterations: search.full.solverIterations as number[] } : {}),
        };
        recordTimed(result);
      } else if (w.kind === 'prepare') {
        const source: PrepareSource = quick
          ? await makeQuickPrepareSource(dataset!, path.join(work, 'quick-source'))
          : { folder: dataset!, dataset: dataset!, description: 'the full mini-ImageNet archives (all three splits)', images: 60_000 };
        const ours = await runOursPrepare(source, path.join(work, 'ours-cache')).then(
          (r) => ({ ok: true as const, ...r }),
          (err: unknown) => ({ ok: false as const, error: (err instanceof Error ? err.message : String(err)).split('\n')[0] }),
        );
        log(`ours: ${ours.ok ? `${Math.round(ours.imagesPerSecond)} images/s (${ours.wallSeconds.toFixed(1)} s)` : `FAILED: ${ours.error}`}`);
        const peerRes = python
          ? await runPeerPrepare(python, source, path.join(work, 'peer-prepare'), log).then(
              (r) => ({ ok: true as const, ...r }),
              (err: unknown) => ({ ok: false as const, error: (err instanceof Error ? err.message : String(err)).split('\n')[0] }),
            )
          : undefined;
        if (peerRes) log(`peer (PIL, ${PEER_PREPARE_WORKERS} workers): ${peerRes.ok ? `${Math.round(peerRes.imagesPerSecond)} images/s (${peerRes.wallSeconds.toFixed(1)} s)` : `FAILED: ${peerRes.error}`}`);
        results.push({
          id: w.id,
          kind: 'prepare',
          // Recorded relative to the working directory: the JSON is committed and holds no path of this machine.
          source: { dataset: path.relative(process.cwd(), source.dataset) || '.', description: source.description, images: source.images },
          imageSize: PREPARE_IMAGE_SIZE,
          loadAverageAtStart: load,
          ours,
          peer: peerRes ?? null,
          /** ours images/s over peer images/s: > 1 means we are faster. */
          ratio: ours.ok && peerRes?.ok ? Math.round((ours.imagesPerSecond / peerRes.imagesPerSecond) * 1000) / 1000 : null,
          goal: {
            imagesPerSecond: PREPARE_GOAL_IMAGES_PER_SECOND,
            oursProjectedSecondsFor60000: ours.ok ? Math.round((60_000 / ours.imagesPerSecond) * 10) / 10 : null,
            met: ours.ok ? ours.imagesPerSecond >= PREPARE_GOAL_IMAGES_PER_SECOND : null,
          },
        });
      } else {
        const spec = w.spec!;
        const inputsFile = await inputsFor(spec);
        const weightsFile = path.join(work, `${tag}.weights.f32`);
        const ours = await runOursWorkload({ op: 'memory', spec, seed: METHOD_SEED, inputsFile, episodes: EPISODE_POOL, weightsFile, memory }, work, tag);
        type Sample = { episode: number; numTensors: number; rssBytes: number; heapUsedBytes: number };
        let oursOut: Record<string, unknown>;
        if (ours.ok) {
          const { before, after, samples, msPerEpisode } = ours as unknown as { before: Sample; after: Sample; samples: Sample[]; msPerEpisode: number };
          const mid = samples[Math.floor((samples.length - 1) / 2)];
          oursOut = {
            ok: true,
            numTensorsBefore: before.numTensors,
            numTensorsAfter: after.numTensors,
            tensorsFlat: before.numTensors === after.numTensors && samples.every((s) => s.numTensors === before.numTensors),
            rssMiBBefore: mib(before.rssBytes),
            rssMiBAfter: mib(after.rssBytes),
            rssMiBGrowth: mib(after.rssBytes - before.rssBytes),
            rssMiBGrowthSecondHalf: mib(after.rssBytes - mid.rssBytes),
            msPerEpisode: Math.round(msPerEpisode * 10) / 10,
            samples: samples.map((s) => ({ episode: s.episode, numTensors: s.numTensors, rssMiB: mib(s.rssBytes), heapUsedMiB: mib(s.heapUsedBytes) })),
          };
          if (!oursOut.tensorsFlat) notes.push(`${w.id}: live tensors changed over the run (${before.numTensors} -> ${after.numTensors})`);
        } else oursOut = { ok: false, error: ours.error };
        log(`ours: ${ours.ok ? `tensors ${String(oursOut.numTensorsBefore)} -> ${String(oursOut.numTensorsAfter)}, RSS ${String(oursOut.rssMiBBefore)} -> ${String(oursOut.rssMiBAfter)} MiB` : `FAILED: ${ours.error}`}`);
        let peerOut: Record<string, unknown> | null = null;
        const weightsMeta = existsSync(`${weightsFile}.json`) ? (JSON.parse(await fs.readFile(`${weightsFile}.json`, 'utf8')) as WeightEntry[]) : undefined;
        if (python && weightsMeta) {
          const steps = quick ? PEER_MEMORY_STEPS.quick : PEER_MEMORY_STEPS.full;
          const peer = new PeerProcess(python, log, processSetting('glibc', PEER_OMP_WAIT_POLICY));
          const res = await peer.request({ op: 'memory', threads: PEER_MEMORY_THREADS, ...spec, episodes: EPISODE_POOL, inputs: inputsFile, weights: weightsFile, weightsMeta, ...memory, steps });
          await peer.close();
          if (res.ok) {
            const r = res as unknown as { threads: number; rssBeforeBytes: number; rssAfterBytes: number; samples: { episode: number; rssBytes: number }[]; msPerEpisode: number };
            peerOut = {
              ok: true,
              episodes: steps,
              setting: `glibc malloc (default), OMP_WAIT_POLICY=${PEER_OMP_WAIT_POLICY}`,
              threads: r.threads,
              rssMiBBefore: mib(r.rssBeforeBytes),
              rssMiBAfter: mib(r.rssAfterBytes),
              rssMiBGrowth: mib(r.rssAfterBytes - r.rssBeforeBytes),
              msPerEpisode: Math.round(r.msPerEpisode * 10) / 10,
              samples: r.samples.map((s) => ({ episode: s.episode, rssMiB: mib(s.rssBytes) })),
            };
          } else peerOut = { ok: false, error: res.error };
          log(`peer: ${peerOut.ok ? `RSS ${String(peerOut.rssMiBBefore)} -> ${String(peerOut.rssMiBAfter)} MiB` : `FAILED: ${String(peerOut.error)}`}`);
        }
        results.push({ id: w.id, kind: 'memory', ...spec, episodes: memory.steps, warmupEpisodes: memory.warmup, loadAverageAtStart: load, ours: oursOut, peer: peerOut });
      }
    }
  } finally {
    await fs.rm(work, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
  }

  const report = reportOf([]);
  const file = await writeReport(path.resolve(opts.out), report);

  if (stepResults.length) console.log(`\n${stepTable(stepResults)}`);
  for (const r of results) {
    if (r.kind === 'prepare') {
      const o = r.ours as { ok: boolean; imagesPerSecond?: number; wallSeconds?: number; images?: number };
      const p = r.peer as { ok: boolean; imagesPerSecond?: number; wallSeconds?: number } | null;
      const goal = r.goal as { met: boolean | null; oursProjectedSecondsFor60000: number | null };
      console.log(
        `\n${String(r.id)}: ours ${o.ok ? `${Math.round(o.imagesPerSecond!)} images/s (${o.images} in ${o.wallSeconds!.toFixed(1)} s${o.images === 60_000 ? '' : `, 60,000 in ~${goal.oursProjectedSecondsFor60000} s`}; goal 60,000 in 60 s ${goal.met ? 'met' : 'NOT met'})` : 'FAILED'}` +
          (p ? `; peer PIL ×${PEER_PREPARE_WORKERS} ${p.ok ? `${Math.round(p.imagesPerSecond!)} images/s (${p.wallSeconds!.toFixed(1)} s)` : 'FAILED'}; ratio ${r.ratio ?? '-'}` : ''),
      );
    } else if (r.kind === 'memory') {
      const o = r.ours as Record<string, unknown>;
      const p = r.peer as Record<string, unknown> | null;
      console.log(
        `\n${String(r.id)} over ${String(r.episodes)} episodes: ours ${o.ok ? `tensors ${String(o.numTensorsBefore)} -> ${String(o.numTensorsAfter)} (${o.tensorsFlat ? 'flat' : 'NOT flat'}), RSS ${String(o.rssMiBBefore)} -> ${String(o.rssMiBAfter)} MiB (${signed(o.rssMiBGrowth)}, ${signed(o.rssMiBGrowthSecondHalf)} in the second half), ${String(o.msPerEpisode)} ms/episode` : 'FAILED'}` +
          (p ? `; peer (${String(p.episodes)} episodes, ${String(p.threads)} thread) RSS ${String(p.rssMiBBefore)} -> ${String(p.rssMiBAfter)} MiB, ${String(p.msPerEpisode)} ms/episode` : ''),
      );
    }
  }
  if (notes.length) console.log(`\nnotes:\n${notes.map((n) => `- ${n}`).join('\n')}`);
  console.log(`\nwall ${report.wallSeconds} s; written ${path.relative(process.cwd(), file)} and latest.json`);
}

main().catch((err: unknown) => {
  if (err instanceof UserError) {
    console.error(`error: ${err.problem}\n  fix: ${err.fix}`);
    process.exit(2);
  }
  console.error(err);
  process.exit(1);
});
