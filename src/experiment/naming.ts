import { createHash } from 'node:crypto';
import type { TrainConfig } from '../train/config.ts';

/**
 * Stable hash of a config (resume only continues a run with an identical config). The dataset fields
 * at their defaults (mini-ImageNet, no options) are left out, so runs started before datasets were
 * configurable keep their hash and still resume.
 */
export function configHash(config: unknown, extra = ''): string {
  let keyed = config;
  if (config && typeof config === 'object' && 'dataset' in config) {
    const { dataset, datasetOptions, ...rest } = config as Record<string, unknown>;
    const defaultData = dataset === 'mini-imagenet' && (!datasetOptions || Object.keys(datasetOptions as object).length === 0);
    if (defaultData) keyed = rest;
  }
  return createHash('sha256')
    .update(JSON.stringify(keyed) + extra)
    .digest('hex')
    .slice(0, 16);
}

/** Readable run name: protonet-sla_conv4_32px_5w1s_3000ep_seed0 */
export function runName(c: TrainConfig): string {
  const t = c.wrapperOptions.transform && c.wrapperOptions.transform !== 'rotation' ? `_${c.wrapperOptions.transform}` : '';
  return `${c.method}${t}_${c.backbone}_${c.imageSize}px_${c.test.way}w${c.test.shot}s_${c.episodes}ep_seed${c.seed}`;
}
