import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { comparedSides, engineOf, evalCheck, headCheck, trainCheck, type EngineInfo } from './checks.ts';
import { EPISODE_POOL, METHOD_SEED, type BenchContext } from './context.ts';
import { dualVariables, HEAD_SETTINGS, makeHeadEpisodes } from './heads.ts';
import { writeEpisodesFile } from './inputs.ts';
import { hostBusyFraction, loadAverage } from './machine.ts';
import type { WeightEntry } from './ours.ts';
import { runOursWorkload, type OursWorkerResult } from './ours-runner.ts';
import type { WorkerRequest } from './ours-worker.ts';
import { searchPeer, type PeerSearchResult } from './peer-search.ts';
import type { HeadWorkloadResult, StepWorkloadResult } from './report.ts';
import { summarize } from './stats.ts';
import { imagesPerEpisode, type Workload } from './workloads.ts';

const HEAD_INPUT_SEED = 11;

type OursRequest = Omit<WorkerRequest, 'resultFile' | 'backend' | 'threads'>;

interface OursRuns {
  ours: OursWorkerResult;
  /** Plain wasm beside it (--with-wasm, when ours is not wasm already). */
  wasm: OursWorkerResult | undefined;
  hostBusy: number | null;
}

function logOurs(ctx: BenchContext, label: string, res: OursWorkerResult, t0: number): void {
  const what = res.ok ? `median ${summarize(res.timesMs as number[]).median.toFixed(1)} ms` : `FAILED: ${res.error}`;
  ctx.log(`${label}: ${what} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}

/** Ours on the engine asked for, then (--with-wasm) on plain wasm, each in its own worker process. */
async function timeOurs(ctx: BenchContext, req: OursRequest, threads: number, tag: string): Promise<OursRuns> {
  const hostBusy = await hostBusyFraction();
  let t0 = performance.now();
  const ours = await runOursWorkload({ ...req, backend: ctx.backend, threads }, ctx.work, tag);
  logOurs(ctx, `ours (${ctx.backend}, ${threads}t)`, ours, t0);
  const ranWasm = ours.ok && (ours.engine as { backend: string }).backend === 'wasm';
  let wasm: OursWorkerResult | undefined;
  if (ctx.withWasm && !ranWasm && ctx.backend !== 'wasm') {
    t0 = performance.now();
    const weightsFile = `${req.weightsFile}.wasm`;
    wasm = await runOursWorkload({ ...req, weightsFile, backend: 'wasm', threads }, ctx.work, `${tag}.wasm`);
    logOurs(ctx, `ours (wasm, ${threads}t)`, wasm, t0);
  }
  return { ours, wasm, hostBusy };
}

async function timePeer(ctx: BenchContext, request: Record<string, unknown>, threads: number, imageInputs: boolean): Promise<PeerSearchResult> {
  const t1 = performance.now();
  const search = await searchPeer(ctx.python!, request, ctx.policy, ctx.log, { screen: ctx.peerSearch, threads: [threads], memoryFormat: imageInputs });
  ctx.log(`peer (${threads}t): ${((performance.now() - t1) / 1000).toFixed(1)} s`);
  return search;
}

/** A workload's report row, and the engine ours ran on (the report's engine section). */
interface TimedWorkload<R> {
  result: R;
  engine: EngineInfo | undefined;
}

/** The workload's files' prefix in the work folder: its id and thread count. */
const workloadTag = (w: Workload, threads: number): string => `${w.id.replace(/\//g, '_')}_t${threads}`;

/** A train or eval workload at one thread count: ours (and wasm beside), the peer's search, the checks. */
export async function runStepWorkload(ctx: BenchContext, w: Workload, threads: number): Promise<TimedWorkload<StepWorkloadResult>> {
  const spec = w.spec!;
  const kind = w.kind as 'train' | 'eval';
  const tag = workloadTag(w, threads);
  const load = loadAverage();
  const inputsFile = await ctx.inputsFor(spec);
  const weightsFile = path.join(ctx.work, `${tag}.weights.f32`);
  const runs = await timeOurs(ctx, { op: kind, spec, seed: METHOD_SEED, inputsFile, episodes: EPISODE_POOL, weightsFile, policy: ctx.policy }, threads, tag);
  const weightsMeta = existsSync(`${weightsFile}.json`) ? (JSON.parse(await fs.readFile(`${weightsFile}.json`, 'utf8')) as WeightEntry[]) : undefined;
  let search: PeerSearchResult | undefined;
  // A workload ours cannot run (heap exhausted) is not timed on the peer either: there is nothing to compare.
  if (ctx.python && weightsMeta && runs.ours.ok) {
    const { headConfig, ...shape } = spec;
    const request = {
      op: kind,
      ...shape,
      backbone: spec.backbone ?? 'conv4',
      head: headConfig ?? null,
      episodes: EPISODE_POOL,
      inputs: inputsFile,
      weights: weightsFile,
      weightsMeta,
    };
    search = await timePeer(ctx, request, threads, true);
  } else if (ctx.python && !runs.ours.ok) ctx.notes.push(`${w.id} (${threads}t): ours failed, the peer was not timed`);
  const check = kind === 'train' ? trainCheck : evalCheck;
  const result: StepWorkloadResult = {
    id: w.id,
    kind,
    threads,
    method: spec.method,
    imageSize: spec.imageSize,
    way: spec.way,
    shot: spec.shot,
    query: spec.query,
    backbone: spec.backbone ?? 'conv4',
    ...(spec.headConfig ? { headConfig: spec.headConfig } : {}),
    imagesPerEpisode: imagesPerEpisode(spec),
    loadAverageAtStart: load,
    ...comparedSides(runs.ours, runs.wasm, { ours: runs.hostBusy, peer: search?.hostBusyBeforeFull ?? null }, search),
    check: check(runs.ours, search?.full),
    ...(runs.wasm ? { checkWasm: check(runs.wasm, search?.full) } : {}),
  };
  return { result, engine: engineOf(runs.ours) };
}

/** A MetaOptNet head alone on seeded embeddings, at one thread count. */
export async function runHeadWorkload(ctx: BenchContext, w: Workload, threads: number): Promise<TimedWorkload<HeadWorkloadResult>> {
  const headSpec = w.headSpec!;
  const tag = workloadTag(w, threads);
  const load = loadAverage();
  const inputsFile = path.join(ctx.work, `${tag}.embeddings.f32`);
  await writeEpisodesFile(inputsFile, makeHeadEpisodes(headSpec, EPISODE_POOL, HEAD_INPUT_SEED));
  const runs = await timeOurs(
    ctx,
    { op: 'head', headSpec, seed: METHOD_SEED, inputsFile, episodes: EPISODE_POOL, weightsFile: path.join(ctx.work, `${tag}.unused`), policy: ctx.policy },
    threads,
    tag,
  );
  let search: PeerSearchResult | undefined;
  if (ctx.python && runs.ours.ok) {
    const request = {
      op: 'head',
      ...headSpec,
      episodes: EPISODE_POOL,
      inputs: inputsFile,
      svmC: HEAD_SETTINGS.svmC,
      ridgeLambda: HEAD_SETTINGS.ridgeLambda,
      scale: HEAD_SETTINGS.scale,
    };
    search = await timePeer(ctx, request, threads, false);
  }
  const iterations = search?.full?.ok ? search.full.solverIterations : undefined;
  const result: HeadWorkloadResult = {
    id: w.id,
    kind: 'head',
    threads,
    ...headSpec,
    dualVariables: dualVariables(headSpec),
    loadAverageAtStart: load,
    ...comparedSides(runs.ours, runs.wasm, { ours: runs.hostBusy, peer: search?.hostBusyBeforeFull ?? null }, search),
    check: headCheck(runs.ours, search?.full),
    ...(runs.wasm ? { checkWasm: headCheck(runs.wasm, search?.full) } : {}),
    ...(Array.isArray(iterations) && iterations.length ? { peerSolverIterations: iterations as number[] } : {}),
  };
  return { result, engine: engineOf(runs.ours) };
}
