import type { AdaptiveLearnerFactory, HeadFactory, LearnerFactory } from './contract.ts';
import { Registry } from '../util/registry.ts';

/**
 * Learners (heads and adaptive learners) by id. Built-ins register themselves in src/learners/builtin.ts; a
 * plugin module (loaded with `--plugin ./my-head.js`) calls `registerHead` / `registerLearner` at import time,
 * so no library file needs editing. The checks (id, fields, apiVersion, duplicates) are the generic registry's.
 */
export const learners = new Registry<LearnerFactory<any>>({
  kind: 'learner',
  registerWith: 'registerHead / registerLearner',
  required: {
    configSchema: { type: 'zod schema', fix: 'give a zod schema of the options, e.g. z.object({}).strict()' },
    create: { type: 'function', fix: 'add create(config) returning the head or learner' },
  },
});

/** Register a learner (a head or an adaptive learner); a plugin calls it at import time. */
export function registerLearner<C>(factory: LearnerFactory<C>): void {
  learners.register(factory);
}

/** Register a head on embeddings (ProtoNet-like); the same registry as `registerLearner`. */
export function registerHead<C>(factory: HeadFactory<C>): void {
  learners.register(factory);
}

/** Register an adaptive learner (MAML-like); the same registry as `registerHead`. */
export function registerAdaptiveLearner<C>(factory: AdaptiveLearnerFactory<C>): void {
  learners.register(factory);
}

/** The learner registered as `id`; a UserError naming the known learners when there is none. */
export function getLearner(id: string): LearnerFactory<unknown> {
  return learners.get(id);
}

/** Where a learner was registered: the built-ins or a plugin's module name / path. */
export function learnerOrigin(id: string): string {
  return learners.origin(id);
}

/** Every registered learner (built-ins and plugins), in registration order. */
export function listLearners(): LearnerFactory<unknown>[] {
  return learners.list();
}
