import type { OursWorkerResult } from './ours-runner.ts';
import type { PeerResponse } from './peer.ts';
import type { PeerSearchResult } from './peer-search.ts';
import type { HeadStepValue } from './heads.ts';
import type { AgreementCheck, SideResult } from './report.ts';
import { roundSummary, summarize } from './stats.ts';

/**
 * Relative difference below which both sides computed the same thing (float32, different conv algorithms; the
 * MetaOptNet duals are solved to optimality on both sides, ours in float32 and the peer in float64).
 */
export const AGREEMENT_TOLERANCE = 1e-3;

export const mib = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;
const relDiff = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-12);
const ratioOf = (peer: SideResult | undefined, ours: SideResult | undefined) =>
  peer?.ok && ours?.ok ? Math.round((peer.msPerEpisode.median / ours.msPerEpisode.median) * 1000) / 1000 : null;

/** The engine a worker ran, as recorded per side (backend, oneDNN version / ISA / threads, wasm threads). */
export interface EngineInfo {
  backend: string;
  detail: string;
  wasmThreads: number;
  onednn: { version: string; isa: string; threads: number } | null;
}

export function engineOf(res: OursWorkerResult): EngineInfo | undefined {
  if (!res.ok) return undefined;
  return res.engine as EngineInfo;
}

export function oursSide(res: OursWorkerResult): SideResult {
  if (!res.ok) return { ok: false, error: res.error };
  const r = res as unknown as { engine: EngineInfo; timesMs: number[]; warmup: { ms: number }[]; numTensorsBefore: number; numTensorsAfter: number };
  return {
    ok: true,
    threads: r.engine.wasmThreads,
    engine: `${r.engine.backend}${r.engine.onednn ? ` (oneDNN ${r.engine.onednn.version} ${r.engine.onednn.isa}, ${r.engine.onednn.threads} oneDNN + ${r.engine.wasmThreads} wasm threads)` : ` (${r.engine.wasmThreads} wasm threads)`}`,
    msPerEpisode: roundSummary(summarize(r.timesMs)),
    warmupMs: r.warmup.map((w) => Math.round(w.ms)),
    numTensorsBefore: r.numTensorsBefore,
    numTensorsAfter: r.numTensorsAfter,
  };
}

export function peerSide(res: PeerResponse): SideResult {
  if (!res.ok) return { ok: false, error: res.error };
  const r = res as unknown as { threads: number; timesMs: number[]; warmup: { ms: number }[]; rssBytes: number };
  return {
    ok: true,
    threads: r.threads,
    msPerEpisode: roundSummary(summarize(r.timesMs)),
    warmupMs: r.warmup.map((w) => Math.round(w.ms)),
    rssMiB: mib(r.rssBytes),
  };
}

/**
 * The fields every timed workload records about both sides: ours (the engine asked for), ours on plain wasm when
 * timed beside it, the peer's fastest setting, and the ratios `best` (peer / ours) and `wasm` (peer / ours on wasm).
 */
export function comparedSides(
  ours: OursWorkerResult,
  oursWasm: OursWorkerResult | undefined,
  hostBusy: { ours: number | null; peer: number | null },
  search: PeerSearchResult | undefined,
) {
  const oursResult = oursSide(ours);
  const wasmResult = oursWasm ? oursSide(oursWasm) : undefined;
  const peer: Record<string, SideResult> = search?.full ? { best: peerSide(search.full) } : {};
  return {
    hostBusyBefore: hostBusy,
    ours: oursResult,
    ...(wasmResult ? { oursWasm: wasmResult } : {}),
    peer,
    peerSetting: search?.bestSettingId ?? null,
    peerScreen: search?.screen ?? [],
    peerProcesses: search?.processes ?? [],
    ratio: { best: ratioOf(peer.best, oursResult), ...(wasmResult ? { wasm: ratioOf(peer.best, wasmResult) } : {}) },
  };
}

/** Train: the first loss (same weights, same episode) and the warm-up loss trajectory must agree. */
export function trainCheck(ours: OursWorkerResult, peer: PeerResponse | undefined): AgreementCheck {
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
export function evalCheck(ours: OursWorkerResult, peer: PeerResponse | undefined): AgreementCheck {
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
  return {
    what,
    ours: oursAcc,
    peer: peerAcc,
    relDiff: d,
    agrees: d < AGREEMENT_TOLERANCE,
    note: `mode ${mode}: argmax equal on ${same}/${rows} queries; ours/peer fields are first-episode accuracies`,
  };
}

/** Head: the first loss (same embeddings) must agree; the gradient norms are compared in the note. */
export function headCheck(ours: OursWorkerResult, peer: PeerResponse | undefined): AgreementCheck {
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
