import { getDatasetProvider } from '../data/providers/registry.ts';
import { canonicalJson } from './reproduce/plan.ts';

/**
 * How a config recorded in a result differs from the config about to be run: `["optimizer.lr: 0.001 → 0.01"]`,
 * or `[]` for the same run. Only the fields of `planned` count (a result records extras, e.g. `describe`); where
 * the data lives on this machine (the provider's source option) is not part of what was run.
 */
export function configDifferences(recorded: unknown, planned: Record<string, unknown>, dataset: string): string[] {
  const rec = (recorded && typeof recorded === 'object' ? recorded : {}) as Record<string, unknown>;
  const picked = Object.fromEntries(Object.keys(planned).map((k) => [k, rec[k]]));
  const out: string[] = [];
  diff(withoutDataLocation(picked, dataset), withoutDataLocation(planned, dataset), '', out);
  return out;
}

/** The differences as one short phrase for a message (at most `max` of them). */
export function describeDifferences(diffs: string[], max = 4): string {
  return diffs.slice(0, max).join('; ') + (diffs.length > max ? `; and ${diffs.length - max} more` : '');
}

function withoutDataLocation(config: Record<string, unknown>, dataset: string): Record<string, unknown> {
  let key: string | undefined;
  try {
    key = getDatasetProvider(dataset).sourceOption;
  } catch {
    key = undefined; // an unknown dataset has no source option to leave out
  }
  const opts = { ...((config.datasetOptions ?? {}) as Record<string, unknown>) };
  if (key) delete opts[key];
  return { ...config, datasetOptions: opts };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function diff(a: unknown, b: unknown, at: string, out: string[]): void {
  if (isObject(a) && isObject(b)) {
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) diff(a[k], b[k], at ? `${at}.${k}` : k, out);
    return;
  }
  const show = (v: unknown) => (v === undefined ? '(none)' : canonicalJson(v));
  if (show(a) !== show(b)) out.push(`${at || '(config)'}: ${show(a)} → ${show(b)}`);
}
