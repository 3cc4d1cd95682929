import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { checkpointKey } from '../backbones/layers.ts';
import { UserError } from '../util/errors.ts';

/**
 * A trained method in the form the browser page loads (`fewshot export`, experiment/export.ts): tfjs's own
 * model artifacts — `model.json` with a `weightsManifest` and binary weight shards, read with `tf.io` — whose
 * `modelTopology` is this manifest: what rebuilds the method (head, wrapper, backbone, options, inference
 * modes), how images are prepared (size, grey, normalisation, resize) and where the weights came from.
 * Weight names are the checkpoint keys of the method's variables, so the page assigns them exactly as
 * `restoreVariables` does for a checkpoint. No Node built-ins: the page bundles this module.
 */
export const EXPORT_FORMAT = 'fewshot-export/1';
/** tfjs's `format` field of model.json: not a layers or graph model, a fewshot method. */
export const EXPORT_TFJS_FORMAT = 'fewshot-method';

const rgb = z.tuple([z.number(), z.number(), z.number()]);

export const exportManifestSchema = z.object({
  format: z.literal(EXPORT_FORMAT),
  /** The fewshot version that exported it; the page loads only its own version's exports. */
  fewshotVersion: z.string(),
  method: z.object({
    /** e.g. `protonet-sla`. */
    name: z.string(),
    head: z.string(),
    /** Wrapper suffix (`sla`, `da`, …); '' for the plain method. */
    wrapper: z.string(),
    backbone: z.string(),
    seed: z.number().int(),
    trainedWay: z.number().int().min(2),
    headConfig: z.record(z.string(), z.unknown()),
    wrapperOptions: z.record(z.string(), z.unknown()),
    /** The method's own description (transformation set, …), as recorded in results. */
    describe: z.record(z.string(), z.unknown()),
    /** First = the headline one. */
    inferenceModes: z.array(z.string()).min(1),
  }),
  image: z.object({
    size: z.number().int().min(1),
    grayscale: z.boolean(),
    normalization: z.object({ mean: rgb, std: rgb }),
    resize: z.string(),
  }),
  provenance: z.record(z.string(), z.unknown()),
});
export type ExportManifest = z.infer<typeof exportManifestSchema>;

const EXPORT_FIX = 'export the checkpoint again with `fewshot export <checkpoint>` and load that folder';

/**
 * Validate the manifest of an export (`modelTopology` of its model.json) for a page or program of
 * fewshot `version`. Every problem is a UserError saying what the file is and what to do.
 */
export function parseExportManifest(topology: unknown, version: string, source = 'model.json'): ExportManifest {
  const format = (topology as { format?: unknown } | null | undefined)?.format;
  if (typeof format !== 'string' || !format.startsWith('fewshot-export/')) {
    throw new UserError(
      `${source} is not a fewshot export (its modelTopology has no fewshot-export format)`,
      `${EXPORT_FIX}; a tfjs layers or graph model cannot be used here`,
    );
  }
  const made = (topology as { fewshotVersion?: unknown }).fewshotVersion;
  if (format !== EXPORT_FORMAT || made !== version) {
    throw new UserError(
      `${source} was exported by fewshot ${typeof made === 'string' ? made : '(unknown version)'} (${format}); this is fewshot ${version} (${EXPORT_FORMAT})`,
      `${EXPORT_FIX} using fewshot ${version}, or open the page served by the fewshot that exported it`,
    );
  }
  const parsed = exportManifestSchema.safeParse(topology);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .slice(0, 3)
      .map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`)
      .join('; ');
    throw new UserError(`${source} is a damaged fewshot export: ${issues}`, EXPORT_FIX);
  }
  return parsed.data;
}

/**
 * Assign named weights (checkpoint key → tensor) to the method's variables. Every variable must be present
 * with its shape; weights the method does not have are a mismatch too (another method's export).
 */
export function assignWeights(weights: tf.NamedTensorMap, variables: tf.Variable[], source = 'the export'): void {
  const keys = variables.map(checkpointKey);
  const missing = keys.filter((k) => !(k in weights));
  const extra = Object.keys(weights).filter((k) => !keys.includes(k));
  if (missing.length || extra.length) {
    const list = (xs: string[]) => `${xs.slice(0, 3).join(', ')}${xs.length > 3 ? ', …' : ''}`;
    throw new UserError(
      `${source} does not match its method: ${missing.length ? `missing ${list(missing)}` : ''}${missing.length && extra.length ? '; ' : ''}${extra.length ? `unexpected ${list(extra)}` : ''}`,
      EXPORT_FIX,
    );
  }
  variables.forEach((v, i) => {
    const w = weights[keys[i]];
    if (w.shape.join('x') !== v.shape.join('x')) {
      throw new UserError(`${source}: weight ${keys[i]} has shape [${w.shape}] but the method expects [${v.shape}]`, EXPORT_FIX);
    }
    v.assign(w);
  });
}
