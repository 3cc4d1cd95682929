import type { z } from 'zod';
import { trainConfigSchema, type TrainConfig } from '../train/config.ts';
import { UserError } from '../util/errors.ts';

/** Parse with a zod schema; a failure is a UserError listing each bad field (`path: message`) and `fix`. */
export function parseWithUserError<T>(schema: z.ZodType<T>, raw: unknown, what: string, fix: string): T {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new UserError(`invalid ${what}: ${issues}`, fix);
  }
  return parsed.data;
}

/** The configs validateConfig returned: passed on unchanged (loadExperimentConfig → runExperiment), they are not parsed again. */
const validated = new WeakSet<object>();

/** Validate a training config (defaults filled in); throws a UserError naming the field. */
export function validateConfig(raw: unknown): TrainConfig {
  const config = parseWithUserError(trainConfigSchema, raw, 'training configuration', 'fix the field in the config (or the flag that set it)');
  validated.add(config);
  return config;
}

/** `raw` itself when validateConfig returned it, else validated now: every config is validated once. */
export function validatedConfig(raw: unknown): TrainConfig {
  return typeof raw === 'object' && raw !== null && validated.has(raw) ? (raw as TrainConfig) : validateConfig(raw);
}
