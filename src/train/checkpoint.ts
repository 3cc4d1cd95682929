import * as tf from '@tensorflow/tfjs-core';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { createHash } from 'node:crypto';
import { checkpointKey } from '../backbones/layers.ts';
import { followVersionedDir, replaceDirAtomic } from '../util/atomic.ts';
import { NumericalError, UserError } from '../util/errors.ts';
import { crashPoint } from '../util/fault.ts';

/**
 * Backend-independent checkpoints: `checkpoint.json` (names, shapes, byte offsets, run metadata) and
 * `weights.bin` (little-endian float32, concatenated). Any backend can write and read them.
 * A checkpoint directory is replaced atomically, so an interrupted save leaves the previous one intact.
 *
 * Integrity (format 2): `weightsSha256` is the sha256 of weights.bin and `checkpointSha256` the sha256 of
 * checkpoint.json's own content without that field (JSON.stringify of the parsed object, key order as written),
 * so the index (keys, shapes, offsets), the optimizer state, the meta (episode, config, image size, best) and the
 * weights' hash are all covered: any edit fails the check. Format 2 requires both fields, so deleting one is an
 * error, not a way to turn the check off. Format 1 checkpoints (written before; weights.bin hash optional) still
 * load, with a one-line notice naming the file; their index is still checked to tile weights.bin exactly.
 */
export const CHECKPOINT_FORMAT = 'fewshot-checkpoint/2';
const LEGACY_FORMAT = 'fewshot-checkpoint/1';

const entrySchema = z.object({ key: z.string(), shape: z.array(z.number().int().min(0)), offset: z.number().int().min(0), length: z.number().int().min(0) });
const commonFields = {
  /** Trainable + state variables of the method. */
  variables: z.array(entrySchema),
  /** Optimizer slots, by slot name, aligned with the trainable variables' order. */
  optimizer: z.object({ type: z.string(), stepCount: z.number().int().min(0), slots: z.record(z.string(), z.array(entrySchema)) }).optional(),
  meta: z.record(z.string(), z.unknown()),
};
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);
const checkpointSchema = z.discriminatedUnion('format', [
  z.object({ format: z.literal(CHECKPOINT_FORMAT), ...commonFields, weightsSha256: sha256Hex, checkpointSha256: sha256Hex }),
  /** Written before checkpoint.json had a checksum; weightsSha256 is absent in the oldest ones. */
  z.object({ format: z.literal(LEGACY_FORMAT), ...commonFields, weightsSha256: sha256Hex.optional() }),
]);
export type CheckpointFile = z.infer<typeof checkpointSchema>;

export interface CheckpointContent {
  variables: tf.Variable[];
  optimizer?: { type: string; stepCount: number; slots: { name: string; tensors: tf.Variable[] }[] };
  meta: Record<string, unknown>;
}

function keysOf(vars: tf.Variable[]): string[] {
  const keys = vars.map(checkpointKey);
  const dup = keys.find((k, i) => keys.indexOf(k) !== i);
  if (dup) throw new Error(`two variables share the checkpoint key "${dup}"`);
  return keys;
}

export async function saveCheckpoint(dir: string, content: CheckpointContent): Promise<void> {
  const chunks: Float32Array[] = [];
  const entryIndex = new Map<Entry, number>();
  let offset = 0;
  const put = (key: string, t: tf.Tensor) => {
    const data = t.dataSync() as Float32Array;
    const entry = { key, shape: t.shape, offset, length: data.length };
    entryIndex.set(entry, chunks.length);
    chunks.push(Float32Array.from(data));
    offset += data.length * 4;
    return entry;
  };
  const keys = keysOf(content.variables);
  const variables = content.variables.map((v, i) => put(keys[i], v));
  let optimizer: CheckpointFile['optimizer'];
  if (content.optimizer) {
    const slots: Record<string, z.infer<typeof entrySchema>[]> = {};
    for (const slot of content.optimizer.slots) slots[slot.name] = slot.tensors.map((t, i) => put(`${slot.name}/${i}`, t));
    optimizer = { type: content.optimizer.type, stepCount: content.optimizer.stepCount, slots };
  }
  // Never write a checkpoint that cannot be used: a non-finite weight, batch-norm statistic or optimizer slot
  // (training diverged) would replace the last good version and then be refused on load.
  const bad = firstNonFinite([...variables, ...Object.values(optimizer?.slots ?? {}).flat()], (e) => chunks[entryIndex.get(e)!]);
  if (bad) throw new NumericalError(`${bad.key} holds a non-finite value (${bad.value})`);
  const bin = Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)));
  // sha256 costs about 1 ms per MB (node crypto, one core, measured under load): ~1.4 ms for a Conv-4
  // checkpoint with Adam slots (1.4 MB), ~150 ms for ResNet-12 with SGD momentum — small next to the write.
  const body = { format: CHECKPOINT_FORMAT, variables, optimizer, meta: content.meta, weightsSha256: createHash('sha256').update(bin).digest('hex') };
  // The hash is taken over the object as JSON (a round trip through JSON.parse gives the same text back).
  const unhashed = JSON.parse(JSON.stringify(body)) as Record<string, unknown>;
  const file = { ...unhashed, checkpointSha256: jsonSha256(unhashed) };
  await replaceDirAtomic(
    dir,
    async (tmp) => {
      await fs.writeFile(path.join(tmp, 'weights.bin'), bin);
      crashPoint('checkpoint:weights-written', path.join(tmp, 'weights.bin'));
      await fs.writeFile(path.join(tmp, 'checkpoint.json'), JSON.stringify(file, null, 1));
    },
    'checkpoint',
  );
}

function jsonSha256(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}

type Entry = z.infer<typeof entrySchema>;

/** The first entry holding a non-finite value, with that value. */
function firstNonFinite(entries: Entry[], data: (e: Entry) => Float32Array): { key: string; value: number } | undefined {
  for (const e of entries) {
    const values = data(e);
    for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return { key: e.key, value: values[i] };
  }
  return undefined;
}

export interface LoadedCheckpoint {
  file: CheckpointFile;
  /** Written before checkpoint.json had a checksum (format 1): its content is not verified. */
  legacy: boolean;
  tensor(entry: z.infer<typeof entrySchema>): tf.Tensor;
}

export interface ReadCheckpointOptions {
  /** Told once per checkpoint file and process when a legacy (format 1) checkpoint is loaded unverified. */
  onNotice?(message: string): void;
}

const noticed = new Set<string>();

export async function readCheckpoint(named: string, options: ReadCheckpointOptions = {}): Promise<LoadedCheckpoint> {
  // `runs/x/best` checked out without symbolic links is a plain file naming its version folder: read that folder.
  const dir = await followVersionedDir(named);
  const jsonPath = path.join(dir, 'checkpoint.json');
  let raw: string;
  try {
    raw = await fs.readFile(jsonPath, 'utf8');
  } catch {
    throw new UserError(
      `no checkpoint at ${dir} (missing checkpoint.json)`,
      'pass the directory that `fewshot train` wrote (it prints it), e.g. runs/<name>/best',
    );
  }
  const corrupt = (what: string) =>
    new UserError(`checkpoint ${jsonPath} ${what}`, 'the checkpoint is corrupt or was edited; retrain, or copy it again from where it was written');
  let json: Record<string, unknown>;
  let parsed: CheckpointFile;
  try {
    json = JSON.parse(raw) as Record<string, unknown>;
    parsed = checkpointSchema.parse(json);
  } catch (err) {
    const format = typeof (json! as Record<string, unknown> | undefined)?.format === 'string' ? String(json!.format) : undefined;
    if (format === CHECKPOINT_FORMAT && (json!.checkpointSha256 === undefined || json!.weightsSha256 === undefined)) {
      throw corrupt(
        `has no ${json!.checkpointSha256 === undefined ? 'checkpointSha256' : 'weightsSha256'} field (every ${CHECKPOINT_FORMAT} checkpoint has one): its content cannot be verified`,
      );
    }
    throw new UserError(
      `checkpoint ${jsonPath} is malformed or from another version: ${(err as Error).message.slice(0, 300)}`,
      'retrain, or point to a checkpoint written by this version of fewshot',
    );
  }
  const legacy = parsed.format === LEGACY_FORMAT;
  if (parsed.format === CHECKPOINT_FORMAT) {
    const { checkpointSha256: recorded, ...rest } = json!;
    const actual = jsonSha256(rest);
    if (actual !== recorded)
      throw corrupt(
        `does not match its checksum (sha256 ${actual.slice(0, 12)}…, recorded ${String(recorded).slice(0, 12)}…): its index, optimizer state or meta was changed`,
      );
  } else {
    const key = path.resolve(jsonPath);
    if (!noticed.has(key)) {
      noticed.add(key);
      options.onNotice?.(`note: ${jsonPath} was written before checkpoints had a checksum over checkpoint.json (${LEGACY_FORMAT}); loaded without that check`);
    }
  }
  const bin = await fs.readFile(path.join(dir, 'weights.bin')).catch(() => {
    throw new UserError(`checkpoint ${dir} has no weights.bin`, 'the checkpoint is incomplete; retrain or copy the whole directory');
  });
  const all = [...parsed.variables, ...Object.values(parsed.optimizer?.slots ?? {}).flat()];
  const end = Math.max(0, ...all.map((e) => e.offset + e.length * 4));
  if (bin.length !== end)
    throw new UserError(`checkpoint ${dir}: weights.bin is ${bin.length} bytes, expected ${end}`, 'the checkpoint is truncated or corrupt; retrain');
  if (parsed.weightsSha256) {
    const actual = createHash('sha256').update(bin).digest('hex');
    if (actual !== parsed.weightsSha256) {
      throw new UserError(
        `checkpoint ${dir}: weights.bin does not match its checksum (sha256 ${actual.slice(0, 12)}…, recorded ${parsed.weightsSha256.slice(0, 12)}…)`,
        'the checkpoint is corrupt; retrain, or copy it again from where it was written',
      );
    }
  }
  // The index must tile weights.bin exactly (as the writer lays it out): each entry as long as its shape, aligned,
  // none overlapping another. Also what keeps a legacy checkpoint with an edited offset from loading scrambled.
  let expected = 0;
  for (const e of [...all].sort((x, y) => x.offset - y.offset)) {
    if (e.length !== e.shape.reduce((a, d) => a * d, 1) || e.offset !== expected) {
      throw corrupt(`has an inconsistent index at ${e.key} (offset ${e.offset}, ${e.length} values, shape [${e.shape}]; expected offset ${expected})`);
    }
    expected += e.length * 4;
  }
  const floats = new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.length));
  const view = (e: Entry) => floats.subarray(e.offset / 4, e.offset / 4 + e.length);
  // Non-finite weights, batch-norm statistics or optimizer slots give constant predictions (e.g. 20.00 ± 0.00 % at
  // 5-way) that look like a result, or a resumed training that goes on from a diverged state.
  const bad = firstNonFinite(all, view);
  if (bad) {
    const kind = parsed.variables.some((e) => e.key === bad.key) ? 'variable' : 'optimizer slot';
    throw new UserError(
      `checkpoint ${dir}: ${kind} ${bad.key} holds a non-finite value (${bad.value})`,
      'the checkpoint is corrupt or training diverged; retrain (lower --lr) or use an earlier checkpoint',
    );
  }
  return {
    file: parsed,
    legacy,
    tensor: (e) => tf.tensor(view(e), e.shape, 'float32'),
  };
}

/** Assign saved values to the given variables by key; every variable must be present with the same shape. */
export function restoreVariables(ckpt: LoadedCheckpoint, variables: tf.Variable[]): void {
  const byKey = new Map(ckpt.file.variables.map((e) => [e.key, e]));
  const keys = keysOf(variables);
  const missing = keys.filter((k) => !byKey.has(k));
  if (missing.length) {
    throw new UserError(
      `checkpoint does not match this model: missing ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`,
      'evaluate with the same method, backbone and image size the checkpoint was trained with (see its checkpoint.json meta)',
    );
  }
  variables.forEach((v, i) => {
    const e = byKey.get(keys[i])!;
    if (e.shape.join('x') !== v.shape.join('x')) {
      throw new UserError(
        `checkpoint variable ${e.key} has shape [${e.shape}] but the model expects [${v.shape}]`,
        'use the same backbone, image size and way the checkpoint was trained with',
      );
    }
    const t = ckpt.tensor(e);
    v.assign(t);
    t.dispose();
  });
}
