import type { TransformSet } from './contract.ts';
import { BUILTIN_TRANSFORM_SETS } from './builtin.ts';
import { Registry } from '../util/registry.ts';

/**
 * Transform sets by name (`--transform rotation`). Built-ins are always present; a plugin adds its own
 * with `registerTransformSet` at import time.
 */
export const transformSets = new Registry<TransformSet>({
  kind: 'transform set',
  idField: 'name',
  registerWith: 'registerTransformSet',
  // the built-in names have underscores (`rot_color_perm6`)
  idPattern: /^[a-z][a-z0-9_-]*$/,
  idRule: 'use lowercase letters, digits, "_" and "-", starting with a letter',
  required: {
    transforms: { type: 'array', fix: 'list the transformations t_0..t_{M-1}, the identity first' },
  },
  check: (set) => {
    if (set.transforms.length < 2)
      return { problem: `has ${set.transforms.length} transformation(s)`, fix: 'a set needs the identity plus at least one other transformation' };
    if (!set.transforms[0].isIdentity)
      return { problem: 'does not start with the identity', fix: 'make t_0 the identity: SLA+SI and SLA+SD read the untransformed copy j=0' };
    return undefined;
  },
});

/** Register a transformation set for the SLA/DA/MT wrappers; a plugin calls it at import time. */
export function registerTransformSet(set: TransformSet): void {
  transformSets.register(set);
}

for (const set of BUILTIN_TRANSFORM_SETS) registerTransformSet(set);

/** Every registered transformation set (built-ins and plugins), in registration order. */
export function listTransformSets(): TransformSet[] {
  return transformSets.list();
}

/** The named set, or a UserError listing the known names. */
export function getTransformSet(name: string): TransformSet {
  return transformSets.get(name);
}
