import { exitCodeOf, installStopHandlers, receivedStopSignal, StoppedBySignal } from '../util/signal.ts';
import { exitWithParent } from '../util/orphan.ts';
import { buildProgram, describeCliFailure } from './program.ts';

// Kept for modules written against the old location of the option parsers.
export { intArg, floatArg, backendOption } from './options.ts';

// The process around the CLI (program.ts): stop signals, the parent watch, and the exit code.
const program = buildProgram();
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
  const { text, code } = await describeCliFailure(err, program, process.argv.slice(2));
  process.stderr.write(text);
  process.exit(code);
}
