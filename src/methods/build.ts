import type { EpisodicMethod, MethodWrapper, MethodWrapperOptions } from './contract.ts';
import type { LearnerFactory } from '../learners/contract.ts';
import type { BackboneFactory } from '../backbones/contract.ts';
import { resolveMethodName } from './registry.ts';
import { getLearner, learnerOrigin } from '../learners/registry.ts';
import { guardLearner } from '../learners/guard.ts';
import { BUILTIN_ORIGIN, originSuffix } from '../util/plugin-origin.ts';
import { getBackbone } from '../backbones/registry.ts';
import { UserError } from '../util/errors.ts';

/** What `buildMethod` builds from: the method name (learner + wrapper), backbone, image size and options. */
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

/**
 * A method name and its options checked against the registries, with no tensor made: the head and wrapper the
 * name means, the head's options parsed by its schema, the backbone's factory. What `buildMethod` checks first;
 * the experiment layer resolves it before the backend loads, once.
 */
export interface ResolvedMethod {
  headId: string;
  headFactory: LearnerFactory<unknown>;
  /** Where the head was registered (built in, or the plugin's module). */
  origin: string;
  /** The head's options, parsed (defaults filled in). */
  headConfig: unknown;
  wrapper: MethodWrapper;
  backbone: BackboneFactory;
}

/** Check a method request against the registries (name, head options, backbone); a UserError names what is wrong. */
export function resolveMethod(req: Pick<MethodRequest, 'name' | 'backbone' | 'headConfig'>): ResolvedMethod {
  const { headId, wrapper } = resolveMethodName(req.name);
  const headFactory = getLearner(headId);
  const origin = learnerOrigin(headId);
  const parsed = headFactory.configSchema.safeParse(req.headConfig ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(options)'}: ${i.message}`).join('; ');
    throw new UserError(`invalid options for learner "${headId}"${originSuffix(origin)}: ${issues}`, 'check the head options (headConfig) in your config');
  }
  return { headId, headFactory, origin, headConfig: parsed.data, wrapper, backbone: getBackbone(req.backbone) };
}

/** Construct a resolved method: the backbone, the (guarded) head and the wrapper around them. */
export function constructMethod(resolved: ResolvedMethod, req: Pick<MethodRequest, 'imageSize' | 'way' | 'seed' | 'wrapperOptions'>): EpisodicMethod {
  const { headId, headFactory, origin, wrapper } = resolved;
  const backbone = resolved.backbone.create({ imageSize: req.imageSize, seed: req.seed });
  let created;
  try {
    created = headFactory.create(resolved.headConfig);
  } catch (err) {
    if (err instanceof UserError || origin === BUILTIN_ORIGIN) throw err;
    throw new UserError(
      `learner "${headId}"${originSuffix(origin)}: "create" threw: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`,
      "fix the plugin's create(config)",
    );
  }
  const head = guardLearner(created, headId, origin);
  return wrapper.create({ backbone, head, way: req.way, imageSize: req.imageSize, seed: req.seed, options: req.wrapperOptions ?? {} });
}

/** Resolve, validate and construct a method. All config errors surface here, before any compute. */
export function buildMethod(req: MethodRequest): EpisodicMethod {
  return constructMethod(resolveMethod(req), req);
}
