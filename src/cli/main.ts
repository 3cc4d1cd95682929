import { Command, CommanderError, Option, InvalidArgumentError } from 'commander';
import { UserError, NumericalError } from '../util/errors.ts';
import { installStopHandlers, receivedStopSignal, StoppedBySignal } from '../util/signal.ts';
import { exitWithParent } from '../util/orphan.ts';
import { BACKEND_CHOICES } from '../backend/select.ts';
import { registerDataCommands } from './commands/data.ts';
import { registerEpisodeCommands } from './commands/episodes.ts';
import { registerTrainCommands } from './commands/train.ts';
import { registerCompareCommand } from './commands/compare.ts';
import { registerListCommand } from './commands/list.ts';
import { registerReproduceCommands } from './commands/reproduce.ts';

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

const program = new Command();
program
  .name('fewshot')
  .description('Few-shot meta-learning with Self-supervised Label Augmentation (SLA) on TensorFlow.js')
  .showHelpAfterError('(run with --help for usage)')
  // Usage errors (unknown option, missing argument, bad value) are bad input like any other: exit 2 with a fix.
  .exitOverride();

registerDataCommands(program);
registerEpisodeCommands(program);
registerTrainCommands(program);
registerCompareCommand(program);
registerListCommand(program);
registerReproduceCommands(program);
(await import('./commands/predict.ts')).registerPredictCommand(program);

installStopHandlers();
exitWithParent();
try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    if (err.exitCode === 0) process.exit(0); // --help, --version
    const sub = process.argv.slice(2).find((a) => !a.startsWith('-'));
    process.stderr.write(`  fix: see \`fewshot ${sub && program.commands.some((c) => c.name() === sub) ? `${sub} ` : ''}--help\` for the accepted options and values\n`);
    process.exit(2);
  }
  // After SIGINT/SIGTERM any error (StoppedBySignal, an aborted prepare's AbortError) is the stop itself.
  const signal = err instanceof StoppedBySignal ? err.signal : receivedStopSignal();
  if (signal) {
    process.stderr.write(`stopped by ${signal}; every checkpoint, result and cache on disk is complete (a resumed run continues from the last checkpoint)\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  }
  if (err instanceof UserError) {
    process.stderr.write(`error: ${err.problem}\n  fix: ${err.fix}\n`);
    process.exit(2);
  }
  if (err instanceof NumericalError) {
    process.stderr.write(`numerical error: ${err.message}\n`);
    process.exit(3);
  }
  throw err;
}
