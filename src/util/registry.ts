import { UserError } from './errors.ts';
import { apiVersionProblem, BUILTIN_ORIGIN, originSuffix, registrationOrigin } from './plugin-origin.ts';
import { didYouMean } from './suggest.ts';

/** A field every entry must have, checked at registration: its kind and how to supply it. */
export interface RequiredField {
  type: 'string' | 'function' | 'zod schema' | 'array';
  fix: string;
}

/** What differs between registries; everything else (the checks' order, the messages, origins) is shared. */
export interface RegistryRules<T> {
  /** What one entry is called in messages: `learner`, `backbone`, `method wrapper`, `transform set`, `dataset`. */
  kind: string;
  /** The field holding the entry's id: `id` by default; a wrapper's `suffix`, a transform set's `name`. */
  idField?: string;
  /** The functions a plugin calls to register one, named when it passes something that is not an object. */
  registerWith: string;
  /** The id rule; by default lowercase letters, digits and dashes, starting with a letter. */
  idPattern?: RegExp;
  /** The rule in words, for the fix of an invalid id. */
  idRule?: string;
  /** The fields an entry must have besides its id and its one-line `description` (every registry's). */
  required?: Record<string, RequiredField>;
  /** A check of the entry as a whole (a transform set starts with the identity): the problem and fix, or undefined. */
  check?: (entry: T) => { problem: string; fix: string } | undefined;
  /** Appended to the fix of an unknown id: by default how to see and add one (PLUGIN_HINT); '' for none. */
  unknownHint?: string;
  /** The word before an unknown id in its message (`unknown dataset "x"`); `kind` by default. */
  unknownKind?: string;
}

export const DEFAULT_ID_PATTERN = /^[a-z][a-z0-9-]*$/;
/** How a user sees the registered ids and adds one: every registry takes plugins. */
export const PLUGIN_HINT = '(`fewshot list` shows them), or load a plugin that registers it with --plugin';
const DEFAULT_ID_RULE = 'use lowercase letters, digits and dashes, starting with a letter';

/**
 * Registered things by id, one behaviour for every kind (learners, backbones, method wrappers, transform sets,
 * dataset providers): built-ins register at import time, a plugin's module registers inside
 * `withRegistrationOrigin` (the CLI's `--plugin` loader), so errors and `fewshot list` name the plugin. Every
 * registration is checked before any compute: an object, a valid id, the required fields, a compatible
 * `apiVersion`, no id registered twice. `get` of an unknown id is a UserError listing the known ids.
 */
export class Registry<T extends object> {
  private readonly entries = new Map<string, { entry: T; origin: string }>();
  /** `description` (what `fewshot list` shows), then the registry's own required fields. */
  private readonly required: Record<string, RequiredField>;

  constructor(private readonly rules: RegistryRules<T>) {
    this.required = { description: { type: 'string', fix: `describe the ${rules.kind} in one line` }, ...rules.required };
  }

  register(entry: T): void {
    const { kind, idField = 'id', registerWith } = this.rules;
    const origin = registrationOrigin();
    const fields = entry as unknown as Record<string, unknown> | null | undefined;
    if (fields === null || typeof fields !== 'object') {
      throw new UserError(
        `a plugin${originSuffix(origin)} registered ${String(fields)} instead of a ${kind} object`,
        `pass { ${[idField, ...Object.keys(this.required)].join(', ')} } to ${registerWith}`,
      );
    }
    const id = fields[idField];
    const fail = (problem: string, fix: string): never => {
      throw new UserError(`${kind} "${String(id)}"${originSuffix(origin)}: ${problem}`, fix);
    };
    if (typeof id !== 'string' || !(this.rules.idPattern ?? DEFAULT_ID_PATTERN).test(id))
      fail(`field "${idField}" is not a valid name`, this.rules.idRule ?? DEFAULT_ID_RULE);
    for (const [name, { type, fix }] of Object.entries(this.required)) {
      const value = fields[name];
      const ok =
        type === 'function'
          ? typeof value === 'function'
          : type === 'string'
            ? typeof value === 'string'
            : type === 'array'
              ? Array.isArray(value)
              : typeof (value as { safeParse?: unknown } | undefined)?.safeParse === 'function';
      if (!ok) fail(type === 'function' ? `required function "${name}" is missing` : `field "${name}" is missing or not a ${type}`, fix);
    }
    const version = apiVersionProblem(fields.apiVersion);
    if (version) fail(`field "apiVersion": ${version}`, 'rebuild the plugin against this fewshot version, or install the fewshot version it was written for');
    const whole = this.rules.check?.(entry);
    if (whole) fail(whole.problem, whole.fix);
    const existing = this.entries.get(id as string);
    if (existing) fail(`is registered twice (first by ${existing.origin})`, `give your ${kind} a different ${idField}`);
    this.entries.set(id as string, { entry, origin });
  }

  /** The entry with this id; a UserError naming the close and the known ids when there is none. */
  get(id: string): T {
    const found = this.entries.get(id);
    if (found) return found.entry;
    const known = this.ids();
    const unknownHint = this.rules.unknownHint ?? PLUGIN_HINT;
    const hint = unknownHint ? ` ${unknownHint}` : '';
    throw new UserError(`unknown ${this.rules.unknownKind ?? this.rules.kind} "${id}"${didYouMean(id, known)}`, `use one of: ${known.join(', ')}${hint}`);
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** Where the entry was registered: BUILTIN_ORIGIN or the plugin module that registered it. */
  origin(id: string): string {
    return this.entries.get(id)?.origin ?? BUILTIN_ORIGIN;
  }

  /** The entries in registration order (built-ins first). */
  list(): T[] {
    return [...this.entries.values()].map((e) => e.entry);
  }

  ids(): string[] {
    return [...this.entries.keys()];
  }
}
