import { Command, CommanderError } from 'commander';
import { describeFailure, versionLine } from '../experiment/front-end.ts';
import { registerDataCommands } from './commands/data.ts';
import { registerEpisodeCommands } from './commands/episodes.ts';
import { registerTrainCommands } from './commands/train.ts';
import { registerCompareCommand } from './commands/compare.ts';
import { registerListCommand } from './commands/list.ts';
import { registerReproduceCommands } from './commands/reproduce.ts';
import { registerPredictCommand } from './commands/predict.ts';
import { registerWebCommands } from './commands/web.ts';
import { registerClassifyCommands } from './commands/classify.ts';
import { registerPretrainedCommands } from './commands/pretrained.ts';
import { usageErrorFix } from './usage-errors.ts';

/*
 * The CLI as a value: the command tree and the mapping from a thrown error to what the user reads and the exit
 * code. main.ts runs it as a process (signals, parent watch, process.exit); the tests run the same tree and the
 * same mapping in-process, so a bad-input case costs a function call instead of a node + tsx start-up.
 *
 * The command modules import only commander and option parsers at the top; tfjs, the data layer and the
 * experiment layer load inside the actions. So `--help`, `--version` and a usage error answer without
 * loading a backend.
 */
export function buildProgram(): Command {
  const program = new Command();
  program
    .name('fewshot')
    .description('Few-shot meta-learning with Self-supervised Label Augmentation (SLA) on TensorFlow.js')
    .version(versionLine(), '-V, --version', 'print the package version and the plugin API version')
    // Usage errors become exceptions (mapped below to error:/fix:, exit 2, like every other bad input).
    .exitOverride()
    .configureOutput({ outputError: () => undefined });

  registerDataCommands(program);
  registerEpisodeCommands(program);
  registerTrainCommands(program);
  registerCompareCommand(program);
  registerListCommand(program);
  registerReproduceCommands(program);
  registerPredictCommand(program);
  registerWebCommands(program);
  registerClassifyCommands(program);
  registerPretrainedCommands(program);
  return program;
}

/** What the CLI prints on stderr for an error thrown by `program`, and the process's exit code. */
export interface CliFailure {
  text: string;
  code: number;
}

/**
 * The exit-code mapping (docs/cli.md): bad input (a usage error, a UserError, a full or read-only disk) → 2 with
 * `error:` and `fix:` lines; a NumericalError → 3; anything else → 1 (a bug) or 2 (a plugin threw). `--help` and `--version` end through here too, with commander's exit code 0 and no text. `args`
 * is the command line after `fewshot` (for the usage-error fix). Stop signals are main.ts's business.
 */
export async function describeCliFailure(err: unknown, program: Command, args: string[]): Promise<CliFailure> {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return { text: '', code: err.exitCode };
    const problem = err.message.replace(/^error: /, '');
    const groups = program.commands.filter((c) => c.commands.length > 0).map((c) => c.name());
    return { text: `error: ${problem}\n  fix: ${usageErrorFix(err, args, groups)}\n`, code: 2 };
  }
  // Every other error is mapped as any front end maps it (experiment/front-end.ts).
  return describeFailure(err);
}
