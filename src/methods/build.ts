import type { EpisodicMethod, MethodWrapperOptions } from './contract.ts';
import { resolveMethodName } from './registry.ts';
import { getLearner, learnerOrigin } from '../learners/registry.ts';
import { guardLearner } from '../learners/guard.ts';
import { BUILTIN_ORIGIN, originSuffix } from '../util/plugin-origin.ts';
import { getBackbone } from '../backbones/registry.ts';
import { UserError } from '../util/errors.ts';

export interface MethodRequest {
  /** e.g. `protonet-sla` */
  name: string;
  backbone: string;
  imageSize: number;
  /** Largest way the method will see (train or test); wrappers check the head can take it. */
  way: number;
  seed: number;
  headConfig?: Record<string, unknown>;
  wrapperOptions?: MethodWrapperOptions;
}

/** Resolve, validate and construct a method. All config errors surface here, before any compute. */
export function buildMethod(req: MethodRequest): EpisodicMethod {
  const { headId, wrapper } = resolveMethodName(req.name);
  const headFactory = getLearner(headId);
  const origin = learnerOrigin(headId);
  const parsed = headFactory.configSchema.safeParse(req.headConfig ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(options)'}: ${i.message}`).join('; ');
    throw new UserError(`invalid options for learner "${headId}"${originSuffix(origin)}: ${issues}`, 'check the head options (headConfig) in your config');
  }
  const backbone = getBackbone(req.backbone).create({ imageSize: req.imageSize, seed: req.seed });
  let created;
  try {
    created = headFactory.create(parsed.data);
  } catch (err) {
    if (err instanceof UserError || origin === BUILTIN_ORIGIN) throw err;
    throw new UserError(`learner "${headId}"${originSuffix(origin)}: "create" threw: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`, 'fix the plugin\'s create(config)');
  }
  const head = guardLearner(created, headId, origin);
  return wrapper.create({ backbone, head, way: req.way, imageSize: req.imageSize, seed: req.seed, options: req.wrapperOptions ?? {} });
}
