import type { MethodWrapper } from './contract.ts';
import { learners } from '../learners/registry.ts';
import { UserError } from '../util/errors.ts';
import { Registry } from '../util/registry.ts';
import { didYouMean } from '../util/suggest.ts';

/**
 * Method names are `<head>` or `<head>-<wrapper suffix>`: `protonet`, `protonet-sla`, `metaoptnet-svm-sla`.
 * Any registered head combines with any registered wrapper, so SLA (and DA, MT, ...) are written once.
 */
export const wrappers = new Registry<MethodWrapper>({
  kind: 'method wrapper',
  idField: 'suffix',
  registerWith: 'registerWrapper',
  // '' is the plain method's wrapper
  idPattern: /^([a-z][a-z0-9-]*)?$/,
  idRule: 'use lowercase letters, digits and dashes, starting with a letter (or "" for the plain method)',
  required: {
    create: { type: 'function', fix: 'add create({ backbone, head, way, imageSize, seed, options }) returning the method' },
  },
});

/** Register a method wrapper (how a learner is trained and evaluated); a plugin calls it at import time. */
export function registerWrapper(wrapper: MethodWrapper): void {
  wrappers.register(wrapper);
}

/** Every registered method wrapper (plain, sla, da, mt, ... and plugins), in registration order. */
export function listWrappers(): MethodWrapper[] {
  return wrappers.list();
}

export interface ResolvedMethodName {
  headId: string;
  wrapper: MethodWrapper;
}

/** Split a method name into head + wrapper, preferring the longest head id that leaves a known suffix. */
export function resolveMethodName(name: string): ResolvedMethodName {
  const candidates = learners
    .ids()
    .filter((id) => name === id || name.startsWith(`${id}-`))
    .sort((a, b) => b.length - a.length);
  for (const headId of candidates) {
    const suffix = name === headId ? '' : name.slice(headId.length + 1);
    if (wrappers.has(suffix)) return { headId, wrapper: wrappers.get(suffix) };
  }
  const known = learners.ids().flatMap((h) => wrappers.ids().map((suffix) => (suffix ? `${h}-${suffix}` : h)));
  throw new UserError(`unknown method "${name}"${didYouMean(name, known)}`, `use one of: ${known.join(', ')} (or load a plugin with --plugin)`);
}
