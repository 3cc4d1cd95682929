import type { HeadFactory } from './contract.ts';
import { UserError } from '../util/errors.ts';

/**
 * Heads by id. Built-ins register themselves in src/learners/builtin.ts; a plugin module (loaded with
 * `--plugin ./my-head.js`) calls `registerHead` at import time, so no library file needs editing.
 */
const heads = new Map<string, HeadFactory<any>>();

export function registerHead<C>(factory: HeadFactory<C>): void {
  if (!/^[a-z][a-z0-9-]*$/.test(factory.id)) {
    throw new UserError(`head id "${factory.id}" is not a valid name`, 'use lowercase letters, digits and dashes, starting with a letter');
  }
  if (heads.has(factory.id)) throw new UserError(`head "${factory.id}" is registered twice`, 'give your plugin head a different id');
  heads.set(factory.id, factory);
}

export function getHead(id: string): HeadFactory<unknown> | undefined {
  return heads.get(id);
}

export function listHeads(): HeadFactory<unknown>[] {
  return [...heads.values()];
}
