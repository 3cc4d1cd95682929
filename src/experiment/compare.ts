import { formatCI, pairedDifference, type MeanCI } from '../eval/stats.ts';
import { readResult, type LoadedResult, type ResultRecord } from '../reports/results.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { UserError } from '../util/errors.ts';
import { portableValue } from '../util/portable-path.ts';

/**
 * `fewshot compare A B`: the paired difference A − B over identical episodes. Refuses results scored on different
 * episode files or different numbers of their episodes, since then the pairing (and the tighter CI) would be
 * meaningless.
 */
export interface CompareRequest {
  /** Result folders (each with a result.json). */
  a: string;
  b: string;
  /** Inference mode of each (default: its headline mode). */
  modeA?: string;
  modeB?: string;
  /** Also write the comparison here as JSON (atomically). */
  out?: string;
  /** Recorded as `command` (the CLI passes its command line). */
  command?: string;
}

export interface ComparisonSide {
  result: string;
  method: string;
  mode: string;
  accuracy: MeanCI & { text: string };
  seed: unknown;
  data: unknown;
}

/** What `compareResults` returns: two results on the same episodes and their paired difference (the record `fewshot compare` writes). */
export interface Comparison {
  format: 'fewshot-comparison/1';
  command?: string;
  createdAt: string;
  episodes: ResultRecord['episodes'];
  a: ComparisonSide;
  b: ComparisonSide;
  pairedDifference: MeanCI & { text: string; formula: string };
}

function checkMode(r: LoadedResult, mode: string | undefined, dir: string): string {
  if (mode === undefined || !r.perEpisode[mode] || !r.record.summary?.[mode]) {
    throw new UserError(
      `${dir} has no inference mode "${mode}"`,
      `use one of: ${(r.record.inferenceModes ?? Object.keys(r.perEpisode)).join(', ') || '(none: the result is incomplete, re-run its evaluation)'}`,
    );
  }
  return mode;
}

/** Pair two results over their identical test episodes; writes `out` when given. */
export async function compareResults(request: CompareRequest): Promise<Comparison> {
  const { a, b } = request;
  const ra = await readResult(a);
  const rb = await readResult(b);
  if (ra.record.episodes.sha256 !== rb.record.episodes.sha256) {
    throw new UserError(`${a} and ${b} were scored on different episode files`, 'evaluate both on the same --test-file (the committed files under episodes/)');
  }
  const ma = checkMode(ra, request.modeA ?? ra.record.inferenceModes[0], a);
  const mb = checkMode(rb, request.modeB ?? rb.record.inferenceModes[0], b);
  const na = ra.perEpisode[ma].length;
  const nb = rb.perEpisode[mb].length;
  if (na !== nb) {
    throw new UserError(
      `${a} was scored on ${na} episodes and ${b} on ${nb} (of the same file): a paired difference needs the same episodes`,
      `evaluate both on the same number of episodes (the same --test-episodes, or none for the whole file): e.g. \`fewshot eval <checkpoint> --test-episodes ${Math.min(na, nb)}\``,
    );
  }
  const d = pairedDifference(ra.perEpisode[ma], rb.perEpisode[mb]);
  const side = (r: LoadedResult, m: string, dir: string) => ({
    result: dir,
    method: r.record.method,
    mode: m,
    accuracy: r.record.summary[m],
    seed: r.record.seed,
    data: r.record.data,
  });
  const comparison = portableValue({
    format: 'fewshot-comparison/1',
    command: request.command,
    createdAt: new Date().toISOString(),
    episodes: ra.record.episodes,
    a: side(ra, ma, a),
    b: side(rb, mb, b),
    pairedDifference: { ...d, text: formatCI(d), formula: 'mean ± 1.96·s/√n of per-episode (A − B) accuracies, s with n−1' },
  }) as Comparison;
  if (request.out) await writeFileAtomic(request.out, JSON.stringify(comparison, null, 2) + '\n');
  return comparison;
}
