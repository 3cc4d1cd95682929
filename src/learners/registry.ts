import type { AdaptiveLearnerFactory, HeadFactory, LearnerFactory } from './contract.ts';
import { UserError } from '../util/errors.ts';
import { apiVersionProblem, originSuffix, registrationOrigin } from '../util/plugin-origin.ts';

/**
 * Learners (heads and adaptive learners) by id. Built-ins register themselves in src/learners/builtin.ts; a
 * plugin module (loaded with `--plugin ./my-head.js`) calls `registerHead` / `registerLearner` at import time,
 * so no library file needs editing. Every registration is checked here, before any compute: a valid id, the
 * required fields and functions, a compatible apiVersion, no id registered twice.
 */
interface Entry {
  factory: LearnerFactory<any>;
  origin: string;
}
const learners = new Map<string, Entry>();

function fail(id: unknown, origin: string, problem: string, fix: string): never {
  throw new UserError(`learner "${String(id)}"${originSuffix(origin)}: ${problem}`, fix);
}

export function registerLearner<C>(factory: LearnerFactory<C>): void {
  const origin = registrationOrigin();
  const f = factory as unknown as Record<string, unknown> | undefined;
  if (f === null || typeof f !== 'object') throw new UserError(`a plugin${originSuffix(origin)} registered ${String(f)} instead of a factory object`, 'pass { id, description, configSchema, create } to registerHead / registerLearner');
  if (typeof f.id !== 'string' || !/^[a-z][a-z0-9-]*$/.test(f.id)) {
    fail(f.id, origin, 'field "id" is not a valid name', 'use lowercase letters, digits and dashes, starting with a letter');
  }
  if (typeof f.description !== 'string') fail(f.id, origin, 'field "description" is missing (a string)', 'describe the learner in one line');
  const schema = f.configSchema as { safeParse?: unknown } | undefined;
  if (!schema || typeof schema.safeParse !== 'function') fail(f.id, origin, 'field "configSchema" is missing or not a zod schema', 'give a zod schema of the options, e.g. z.object({}).strict()');
  if (typeof f.create !== 'function') fail(f.id, origin, 'required function "create" is missing', 'add create(config) returning the head or learner');
  const version = apiVersionProblem(f.apiVersion);
  if (version) fail(f.id, origin, `field "apiVersion": ${version}`, 'rebuild the plugin against this fewshot version, or install the fewshot version it was written for');
  const existing = learners.get(factory.id);
  if (existing) {
    fail(factory.id, origin, `is registered twice (first by ${existing.origin})`, 'give your learner a different id');
  }
  learners.set(factory.id, { factory, origin });
}

/** Register a head on embeddings (ProtoNet-like); the same registry as `registerLearner`. */
export function registerHead<C>(factory: HeadFactory<C>): void {
  registerLearner(factory);
}

/** Register an adaptive learner (MAML-like); the same registry as `registerHead`. */
export function registerAdaptiveLearner<C>(factory: AdaptiveLearnerFactory<C>): void {
  registerLearner(factory);
}

export function getHead(id: string): LearnerFactory<unknown> | undefined {
  return learners.get(id)?.factory;
}

/** Where a learner was registered: the built-ins or a plugin's module name / path. */
export function learnerOrigin(id: string): string | undefined {
  return learners.get(id)?.origin;
}

export function listHeads(): LearnerFactory<unknown>[] {
  return [...learners.values()].map((e) => e.factory);
}
