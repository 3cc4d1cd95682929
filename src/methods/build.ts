import type { EpisodicMethod, MethodWrapperOptions } from './contract.ts';
import { resolveMethodName } from './registry.ts';
import { getHead } from '../learners/registry.ts';
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
  const headFactory = getHead(headId)!;
  const parsed = headFactory.configSchema.safeParse(req.headConfig ?? {});
  if (!parsed.success) {
    throw new UserError(`invalid options for head "${headId}": ${parsed.error.message}`, 'check the head options in your config');
  }
  const backbone = getBackbone(req.backbone).create({ imageSize: req.imageSize, seed: req.seed });
  const head = headFactory.create(parsed.data);
  return wrapper.create({ backbone, head, way: req.way, imageSize: req.imageSize, seed: req.seed, options: req.wrapperOptions ?? {} });
}
