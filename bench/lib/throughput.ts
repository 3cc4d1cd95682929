import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { mib } from './checks.ts';
import { EPISODE_POOL, METHOD_SEED, type BenchContext } from './context.ts';
import { loadAverage } from './machine.ts';
import type { WeightEntry } from './ours.ts';
import { runOursWorkload } from './ours-runner.ts';
import { PEER_OMP_WAIT_POLICY, PeerProcess, processSetting } from './peer.ts';
import {
  makeQuickPrepareSource,
  PEER_PREPARE_WORKERS,
  PREPARE_GOAL_IMAGES_PER_SECOND,
  PREPARE_IMAGE_SIZE,
  runOursPrepare,
  runPeerPrepare,
  type PrepareSource,
} from './prepare.ts';
import type { Workload } from './workloads.ts';

/*
 * The two workloads that are not timed steps: `prepare` (images/s of the dataset preparation against PIL) and
 * `memory` (live tensors and RSS over a long training run). Each runs once, not per thread count.
 */

/**
 * The peer's memory run is a reference only: 1 thread (its RSS does not depend on threads, and 2 threads crawl on
 * a busy machine) and fewer episodes than ours, to keep the suite's wall time down.
 */
const PEER_MEMORY_THREADS = 1;
const PEER_MEMORY_STEPS = { full: 200, quick: 30 };

const firstLine = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0];

export async function runPrepareWorkload(ctx: BenchContext, w: Workload): Promise<Record<string, unknown>> {
  const load = loadAverage();
  const dataset = ctx.dataset!;
  const source: PrepareSource = ctx.quick
    ? await makeQuickPrepareSource(dataset, path.join(ctx.work, 'quick-source'))
    : { folder: dataset, dataset, description: 'the full mini-ImageNet archives (all three splits)', images: 60_000 };
  const ours = await runOursPrepare(source, path.join(ctx.work, 'ours-cache')).then(
    (r) => ({ ok: true as const, ...r }),
    (err: unknown) => ({ ok: false as const, error: firstLine(err) }),
  );
  ctx.log(`ours: ${ours.ok ? `${Math.round(ours.imagesPerSecond)} images/s (${ours.wallSeconds.toFixed(1)} s)` : `FAILED: ${ours.error}`}`);
  const peer = ctx.python
    ? await runPeerPrepare(ctx.python, source, path.join(ctx.work, 'peer-prepare'), ctx.log).then(
        (r) => ({ ok: true as const, ...r }),
        (err: unknown) => ({ ok: false as const, error: firstLine(err) }),
      )
    : undefined;
  if (peer)
    ctx.log(
      `peer (PIL, ${PEER_PREPARE_WORKERS} workers): ${peer.ok ? `${Math.round(peer.imagesPerSecond)} images/s (${peer.wallSeconds.toFixed(1)} s)` : `FAILED: ${peer.error}`}`,
    );
  return {
    id: w.id,
    kind: 'prepare',
    // Recorded relative to the working directory: the JSON may be committed and holds no path of this machine.
    source: { dataset: path.relative(process.cwd(), source.dataset) || '.', description: source.description, images: source.images },
    imageSize: PREPARE_IMAGE_SIZE,
    loadAverageAtStart: load,
    ours,
    peer: peer ?? null,
    /** ours images/s over peer images/s: > 1 means we are faster. */
    ratio: ours.ok && peer?.ok ? Math.round((ours.imagesPerSecond / peer.imagesPerSecond) * 1000) / 1000 : null,
    goal: {
      imagesPerSecond: PREPARE_GOAL_IMAGES_PER_SECOND,
      oursProjectedSecondsFor60000: ours.ok ? Math.round((60_000 / ours.imagesPerSecond) * 10) / 10 : null,
      met: ours.ok ? ours.imagesPerSecond >= PREPARE_GOAL_IMAGES_PER_SECOND : null,
    },
  };
}

type Sample = { episode: number; numTensors: number; rssBytes: number; heapUsedBytes: number };

function oursMemory(ours: Record<string, unknown>): Record<string, unknown> {
  const { before, after, samples, msPerEpisode } = ours as unknown as { before: Sample; after: Sample; samples: Sample[]; msPerEpisode: number };
  const mid = samples[Math.floor((samples.length - 1) / 2)];
  return {
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
}

async function peerMemory(ctx: BenchContext, request: Record<string, unknown>): Promise<Record<string, unknown>> {
  const steps = ctx.quick ? PEER_MEMORY_STEPS.quick : PEER_MEMORY_STEPS.full;
  const peer = new PeerProcess(ctx.python!, ctx.log, processSetting('glibc', PEER_OMP_WAIT_POLICY), PEER_MEMORY_THREADS);
  const res = await peer.request({ ...request, op: 'memory', threads: PEER_MEMORY_THREADS, ...ctx.memory, steps });
  await peer.close();
  if (!res.ok) return { ok: false, error: res.error };
  const r = res as unknown as {
    threads: number;
    rssBeforeBytes: number;
    rssAfterBytes: number;
    samples: { episode: number; rssBytes: number }[];
    msPerEpisode: number;
  };
  return {
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
}

/** Ours over `ctx.memory.steps` training episodes on the engine asked for, at `threads`; the peer for reference. */
export async function runMemoryWorkload(ctx: BenchContext, w: Workload, threads: number): Promise<Record<string, unknown>> {
  const spec = w.spec!;
  const load = loadAverage();
  const inputsFile = await ctx.inputsFor(spec);
  const weightsFile = path.join(ctx.work, `${w.id.replace(/\//g, '_')}.weights.f32`);
  const ours = await runOursWorkload(
    { op: 'memory', backend: ctx.backend, threads, spec, seed: METHOD_SEED, inputsFile, episodes: EPISODE_POOL, weightsFile, memory: ctx.memory },
    ctx.work,
    w.id.replace(/\//g, '_'),
  );
  const oursOut = ours.ok ? oursMemory(ours) : { ok: false, error: ours.error };
  if (ours.ok && !oursOut.tensorsFlat)
    ctx.notes.push(`${w.id}: live tensors changed over the run (${String(oursOut.numTensorsBefore)} -> ${String(oursOut.numTensorsAfter)})`);
  ctx.log(
    `ours: ${ours.ok ? `tensors ${String(oursOut.numTensorsBefore)} -> ${String(oursOut.numTensorsAfter)}, RSS ${String(oursOut.rssMiBBefore)} -> ${String(oursOut.rssMiBAfter)} MiB` : `FAILED: ${ours.error}`}`,
  );
  let peerOut: Record<string, unknown> | null = null;
  const weightsMeta = existsSync(`${weightsFile}.json`) ? (JSON.parse(await fs.readFile(`${weightsFile}.json`, 'utf8')) as WeightEntry[]) : undefined;
  if (ctx.python && weightsMeta) {
    peerOut = await peerMemory(ctx, { ...spec, episodes: EPISODE_POOL, inputs: inputsFile, weights: weightsFile, weightsMeta });
    ctx.log(`peer: ${peerOut.ok ? `RSS ${String(peerOut.rssMiBBefore)} -> ${String(peerOut.rssMiBAfter)} MiB` : `FAILED: ${String(peerOut.error)}`}`);
  }
  const engine = ours.ok ? ours.engine : null;
  return {
    id: w.id,
    kind: 'memory',
    ...spec,
    threads,
    engine,
    episodes: ctx.memory.steps,
    warmupEpisodes: ctx.memory.warmup,
    loadAverageAtStart: load,
    ours: oursOut,
    peer: peerOut,
  };
}
