import { Command, CommanderError } from 'commander';
import { UserError, NumericalError } from '../util/errors.ts';
import { diskErrorOf } from '../util/fs-errors.ts';
import { exitCodeOf, installStopHandlers, receivedStopSignal, StoppedBySignal } from '../util/signal.ts';
import { exitWithParent } from '../util/orphan.ts';
import { packageInfo } from '../util/package-root.ts';
import { FEWSHOT_API_VERSION } from '../util/plugin-origin.ts';
import { registerDataCommands } from './commands/data.ts';
import { registerEpisodeCommands } from './commands/episodes.ts';
import { registerTrainCommands } from './commands/train.ts';
import { registerCompareCommand } from './commands/compare.ts';
import { registerListCommand } from './commands/list.ts';
import { registerReproduceCommands } from './commands/reproduce.ts';
import { registerPredictCommand } from './commands/predict.ts';
import { registerWebCommands } from './commands/web.ts';
import { usageErrorFix } from './usage-errors.ts';
import { describeUnexpectedError } from './unexpected-error.ts';

// Kept for modules written against the old location of the option parsers.
export { intArg, floatArg, backendOption } from './options.ts';

/*
 * The command modules import only commander and option parsers at the top; tfjs, the data layer and the
 * experiment layer load inside the actions. So `--help`, `--version` and a usage error answer without
 * loading a backend.
 */
const program = new Command();
program
  .name('fewshot')
  .description('Few-shot meta-learning with Self-supervised Label Augmentation (SLA) on TensorFlow.js')
  .version(`fewshot ${packageInfo().version} (plugin API ${FEWSHOT_API_VERSION})`, '-V, --version', 'print the package version and the plugin API version')
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

installStopHandlers();
exitWithParent();
try {
  await program.parseAsync(process.argv);
} catch (err) {
  // After a stop signal any error (StoppedBySignal, an aborted prepare's AbortError) is the stop itself.
  const signal = err instanceof StoppedBySignal ? err.signal : receivedStopSignal();
  if (signal) {
    const kept = err instanceof StoppedBySignal && err.detail ? `, ${err.detail}` : '';
    process.stderr.write(`stopped by ${signal}${kept}; every checkpoint, result and cache on disk is complete (a resumed run continues from the last checkpoint)\n`);
    process.exit(exitCodeOf(signal));
  }
  if (err instanceof CommanderError) {
    // --help and --version end through here too, with commander's own (0) exit code.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') process.exit(err.exitCode);
    const problem = err.message.replace(/^error: /, '');
    process.stderr.write(`error: ${problem}\n  fix: ${usageErrorFix(err, process.argv.slice(2), program.commands.filter((c) => c.commands.length > 0).map((c) => c.name()))}\n`);
    process.exit(2);
  }
  if (err instanceof UserError) {
    process.stderr.write(`error: ${err.problem}\n  fix: ${err.fix}\n`);
    process.exit(2);
  }
  if (err instanceof NumericalError) {
    process.stderr.write(`numerical error: ${err.message}\n`);
    process.exit(3);
  }
  // A full, read-only or forbidden disk is the machine's state, not a bug: the folder and the cure, exit 2.
  const disk = diskErrorOf(err);
  if (disk) {
    process.stderr.write(`error: ${disk.problem}\n  fix: ${disk.fix}\n`);
    process.exit(2);
  }
  const { text, code } = await describeUnexpectedError(err);
  process.stderr.write(text);
  process.exit(code);
}
