import { stopFailure, superviseProcess } from '../experiment/front-end.ts';
import { buildProgram, describeCliFailure } from './program.ts';

// Kept for modules written against the old location of the option parsers.
export { intArg, floatArg, backendOption } from './options.ts';

// The process around the CLI (program.ts): stop signals, the parent watch, and the exit code.
const program = buildProgram();
superviseProcess();
try {
  await program.parseAsync(process.argv);
} catch (err) {
  // After a stop signal any error (StoppedBySignal, an aborted prepare's AbortError) is the stop itself.
  const { text, code } = stopFailure(err) ?? (await describeCliFailure(err, program, process.argv.slice(2)));
  process.stderr.write(text);
  process.exit(code);
}
