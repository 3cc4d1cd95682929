import type * as tf from '@tensorflow/tfjs-core';
import type { AdaptiveLearner, AdaptedTask, EmbeddedEpisode, FewShotHead, ImageTask, Learner } from './contract.ts';
import { NumericalError, UserError } from '../util/errors.ts';
import { BUILTIN_ORIGIN, originSuffix } from '../util/plugin-origin.ts';

/*
 * A created learner, checked. `guardLearner` verifies the object a factory returned (required functions and
 * fields) and wraps it so that every call checks the shapes it returns: a head giving [nQuery, way·5] logits
 * fails on the first episode with an error naming the learner and the field, instead of training silently.
 * Shapes are static, so the checks cost nothing. For plugins, an ordinary Error thrown inside the learner is
 * turned into a UserError naming the plugin (one line, not a stack of minified backend code).
 */

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function checkShape(what: string, actual: tf.Tensor | undefined, expected: number[], name: string, field: string): void {
  const ok =
    actual !== undefined &&
    actual !== null &&
    typeof (actual as tf.Tensor).shape === 'object' &&
    actual.shape.length === expected.length &&
    expected.every((d, i) => d < 0 || actual.shape[i] === d);
  if (!ok) {
    const got = actual && Array.isArray((actual as tf.Tensor).shape) ? shapeText(actual.shape) : String(actual);
    throw new UserError(
      `${name}: "${field}" returned ${what} of shape ${got}, expected ${shapeText(expected.map((d) => (d < 0 ? NaN : d))).replace(/NaN/g, 'd')}`,
      `return ${what} with one row per query and one column per class of the episode (way = ${expected[1] ?? '?'})`,
    );
  }
}

/** The learner's `field` called through `call`; a plugin's ordinary error becomes a UserError naming it and the field. */
function guarded<R>(call: () => R, name: string, field: string, origin: string): R {
  try {
    return call();
  } catch (err) {
    if (origin === BUILTIN_ORIGIN || err instanceof UserError || err instanceof NumericalError) throw err;
    const message = err instanceof Error ? err.message.split('\n')[0].slice(0, 300) : String(err);
    throw new UserError(`${name}: "${field}" threw: ${message}`, 'fix the plugin (run it on a tiny episode in a test to see the full stack)');
  }
}

/** Check the object a factory created and return it wrapped with shape checks. */
export function guardLearner(learner: Learner, factoryId: string, origin: string): Learner {
  const name = `learner "${factoryId}"${originSuffix(origin)}`;
  const l = learner as unknown as Record<string, unknown>;
  if (l === null || typeof l !== 'object')
    throw new UserError(`${name}: create() returned ${String(l)}`, 'return an object implementing FewShotHead or AdaptiveLearner');
  if (typeof l.id !== 'string') throw new UserError(`${name}: the created learner has no string field "id"`, `set id: '${factoryId}'`);
  if (typeof l.variables !== 'function')
    throw new UserError(`${name}: required function "variables" is missing`, "add variables() returning the learner's tf.Variables (or [])");
  if (l.maxWay !== undefined && !(Number.isInteger(l.maxWay) && (l.maxWay as number) > 0))
    throw new UserError(`${name}: field "maxWay" must be a positive integer, got ${String(l.maxWay)}`, 'drop it or set the largest way the learner can take');
  if (l.kind === 'adaptive') {
    for (const fn of ['prepare', 'adapt'] as const) {
      if (typeof l[fn] !== 'function')
        throw new UserError(
          `${name}: required function "${fn}" of an adaptive learner is missing`,
          'implement AdaptiveLearner: prepare(setup) and adapt(task, context)',
        );
    }
    return guardAdaptive(learner as AdaptiveLearner, name, origin);
  }
  if (l.kind !== undefined && l.kind !== 'head')
    throw new UserError(`${name}: field "kind" is ${JSON.stringify(l.kind)}`, "use 'head' (or leave it out) for a head, 'adaptive' for an adaptive learner");
  if (l.prepare !== undefined && typeof l.prepare !== 'function')
    throw new UserError(`${name}: field "prepare" is not a function`, 'drop it or make it prepare(setup)');
  if (typeof l.logits !== 'function')
    throw new UserError(`${name}: required function "logits" is missing`, 'implement FewShotHead: logits(episode, phase) returning [nQuery, way] scores');
  return guardHead(learner as FewShotHead, name, origin);
}

/** What every learner has, as the wrapper passes it on: its id, limits, and variables() checked. */
function commonFields(learner: Learner, name: string, origin: string): Pick<Learner, 'id' | 'maxWay' | 'labelSmoothing' | 'variables'> {
  return {
    id: learner.id,
    maxWay: learner.maxWay,
    labelSmoothing: learner.labelSmoothing,
    variables: () => {
      const vars = guarded(() => learner.variables(), name, 'variables', origin);
      if (!Array.isArray(vars)) throw new UserError(`${name}: "variables" returned ${String(vars)}, not an array`, 'return an array of tf.Variable (or [])');
      return vars;
    },
  };
}

function guardHead(head: FewShotHead, name: string, origin: string): FewShotHead {
  return {
    kind: 'head',
    ...commonFields(head, name, origin),
    prepare: head.prepare ? (setup) => guarded(() => head.prepare!(setup), name, 'prepare', origin) : undefined,
    logits: (ep: EmbeddedEpisode, phase: 'train' | 'eval') => {
      const out = guarded(() => head.logits(ep, phase), name, 'logits', origin);
      checkShape('logits', out, [ep.query.shape[0], ep.way], name, 'logits');
      return out;
    },
  };
}

function guardAdaptive(learner: AdaptiveLearner, name: string, origin: string): AdaptiveLearner {
  return {
    kind: 'adaptive',
    ...commonFields(learner, name, origin),
    prepare: (setup) => guarded(() => learner.prepare(setup), name, 'prepare', origin),
    adapt: (task: ImageTask, context) => {
      const out: AdaptedTask = guarded(() => learner.adapt(task, context), name, 'adapt', origin);
      if (!out || typeof out !== 'object') throw new UserError(`${name}: "adapt" returned ${String(out)}`, 'return { logits, embeddings }');
      const nSupport = task.supportImages.shape[0];
      const nQuery = task.queryImages.shape[0];
      checkShape('logits', out.logits, [nQuery, task.way], name, 'adapt');
      checkShape('embeddings', out.embeddings, [nSupport + nQuery, -1], name, 'adapt');
      return out;
    },
  };
}
