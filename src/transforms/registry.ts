import type { TransformSet } from './contract.ts';
import { BUILTIN_TRANSFORM_SETS } from './builtin.ts';
import { UserError } from '../util/errors.ts';

/**
 * Transform sets by name (`--transform rotation`). Built-ins are always present; a plugin adds its own
 * with `registerTransformSet` at import time.
 */
const sets = new Map<string, TransformSet>();

export function registerTransformSet(set: TransformSet): void {
  if (!/^[a-z][a-z0-9_-]*$/.test(set.name)) {
    throw new UserError(`transform set name "${set.name}" is not a valid name`, 'use lowercase letters, digits, "_" and "-", starting with a letter');
  }
  if (sets.has(set.name)) throw new UserError(`transform set "${set.name}" is registered twice`, 'give it a different name');
  if (set.transforms.length < 2) {
    throw new UserError(`transform set "${set.name}" has ${set.transforms.length} transformation(s)`, 'a set needs the identity plus at least one other transformation');
  }
  if (!set.transforms[0].isIdentity) {
    throw new UserError(`transform set "${set.name}" does not start with the identity`, 'make t_0 the identity: SLA+SI and SLA+SD read the untransformed copy j=0');
  }
  sets.set(set.name, set);
}

for (const set of BUILTIN_TRANSFORM_SETS) registerTransformSet(set);

export function listTransformSets(): TransformSet[] {
  return [...sets.values()];
}

/** The named set, or a UserError listing the known names. */
export function getTransformSet(name: string): TransformSet {
  const set = sets.get(name);
  if (!set) {
    throw new UserError(`unknown transform set "${name}"`, `use one of: ${[...sets.keys()].join(', ')}`);
  }
  return set;
}
