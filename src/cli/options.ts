import { Option, InvalidArgumentError, type Command } from 'commander';
import { BACKEND_CHOICES } from '../backend/choices.ts';

/*
 * Option parsers shared by the commands. This module (like every module the CLI imports before parsing)
 * loads no tfjs, data or experiment code: those are imported inside the actions, so `--help`, `--version`
 * and usage errors answer at once.
 */

export function intArg(name: string, min = 1) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}, got "${v}"`);
    return n;
  };
}

export function floatArg(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number, got "${v}"`);
    return n;
  };
}

export const backendOption = () =>
  new Option('--backend <name>', 'compute backend; auto takes the first that loads').choices(BACKEND_CHOICES as unknown as string[]).default('auto');

/**
 * The parser of a repeatable option: `--plugin a.js --plugin b.js` → ['a.js', 'b.js']. One value per flag, so the
 * option never takes the positional argument after it (`--plugin ./x.js protonet`: protonet stays the method).
 */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export const jsonOption = () => new Option('--json', 'print a machine-readable JSON summary on stdout (messages stay on stderr)');

/** Print `value` as one JSON document on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/*
 * Option builders: each flag that several commands take is declared once, here, with its parser; a command passes
 * its own help text where the flag means something particular to it.
 */

/** `--plugin <module>`, repeatable: modules loaded before the command runs. */
export const pluginOption = (help = 'modules that register extra heads/backbones/wrappers/dataset providers (repeat the flag for more)') =>
  new Option('--plugin <module>', help).argParser(collect);

/** `--data <path>`: one dataset source. */
export const dataOption = (help = 'dataset source: its folder or file, as the provider expects (`fewshot list` shows providers)') =>
  new Option('--data <path>', help);

/** `--data <dataset=location>`, repeatable: a source per dataset (commands that run several datasets). */
export const dataLocationsOption = (help: string) => new Option('--data <dataset=location>', help).argParser(collect);

/** `--cache <dir>`: the decoded-image cache folder. */
export const cacheOption = (help = 'decoded-image cache (default: ./.cache/<dataset>-<size>, or under $FEWSHOT_CACHE)') => new Option('--cache <dir>', help);

/** Adds a command's flags to it, in order: the order `--help` lists them in. */
export type OptionBuilder = (cmd: Command) => Command;

/** `parent`'s (sub)command `name` with its description, the flags of each builder in turn, and its action. */
export function addCommand(parent: Command, name: string, description: string, builders: OptionBuilder[], action: Parameters<Command['action']>[0]): Command {
  return builders.reduce((cmd, add) => add(cmd), parent.command(name).description(description)).action(action);
}
