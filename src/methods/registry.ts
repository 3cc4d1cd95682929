import type { MethodWrapper } from './contract.ts';
import { getHead, listHeads } from '../learners/registry.ts';
import { UserError } from '../util/errors.ts';
import { didYouMean } from '../util/suggest.ts';

/**
 * Method names are `<head>` or `<head>-<wrapper suffix>`: `protonet`, `protonet-sla`, `metaoptnet-svm-sla`.
 * Any registered head combines with any registered wrapper, so SLA (and DA, MT, ...) are written once.
 */
const wrappers = new Map<string, MethodWrapper>();

export function registerWrapper(wrapper: MethodWrapper): void {
  if (wrappers.has(wrapper.suffix)) throw new UserError(`method wrapper "${wrapper.suffix}" is registered twice`, 'give it a different suffix');
  wrappers.set(wrapper.suffix, wrapper);
}

export function listWrappers(): MethodWrapper[] {
  return [...wrappers.values()];
}

export interface ResolvedMethodName {
  headId: string;
  wrapper: MethodWrapper;
}

/** Split a method name into head + wrapper, preferring the longest head id that leaves a known suffix. */
export function resolveMethodName(name: string): ResolvedMethodName {
  const candidates = listHeads()
    .map((h) => h.id)
    .filter((id) => name === id || name.startsWith(`${id}-`))
    .sort((a, b) => b.length - a.length);
  for (const headId of candidates) {
    const suffix = name === headId ? '' : name.slice(headId.length + 1);
    const wrapper = wrappers.get(suffix);
    if (wrapper && getHead(headId)) return { headId, wrapper };
  }
  const known = listHeads().flatMap((h) => listWrappers().map((w) => (w.suffix ? `${h.id}-${w.suffix}` : h.id)));
  throw new UserError(`unknown method "${name}"${didYouMean(name, known)}`, `use one of: ${known.join(', ')} (or load a plugin with --plugin)`);
}
