// The flags every experiment command takes, and the experiment-layer options they give (the CLI's half of
// experiment/options.ts sharedOptionsSchema). Like options.ts, this loads no tfjs, data or experiment code.

/** The flags of the options every experiment call shares (the experiment layer's sharedOptionsSchema), and --plugin, --json. */
export interface SharedFlags {
  backend: string;
  data?: string;
  cache?: string;
  plugin?: string[];
  results: string;
  name?: string;
  json?: boolean;
}

/** The command line as typed: results record it as `command`. */
export const commandLine = (): string => ['fewshot', ...process.argv.slice(2)].join(' ');

/** The shared experiment options from their flags, with the command line to record. */
export function sharedOptionsOf(flags: SharedFlags) {
  return { backend: flags.backend, data: flags.data, cache: flags.cache, results: flags.results, name: flags.name, command: commandLine() };
}
