import test from 'ava';
// @ts-expect-error: a plain .mjs script without type declarations
import { measureCli } from '../scripts/cli-shape.mjs';

interface Shape {
  belowExperiment: { module: string; files: string[] }[];
  longestFunctions: { file: string; line: number; name: string; lines: number }[];
}

/**
 * Issue 28: the CLI parses, calls one experiment-layer function and prints. Measured on the source by
 * scripts/cli-shape.mjs (the TypeScript parser: every static, type-only and dynamic import, every function's lines).
 */
test('src/cli imports nothing below the experiment layer but its two option helpers, and has no function of 50 lines or more', (t) => {
  const shape = measureCli() as Shape;
  // backend/choices.ts: the --backend choices; util/errors.ts: the UserError an option parser throws.
  t.deepEqual(
    shape.belowExperiment.map((b) => b.module),
    ['backend/choices.ts', 'util/errors.ts'],
  );
  const longest = shape.longestFunctions[0];
  t.true(longest.lines < 50, `${longest.name} (${longest.file}:${longest.line}) is ${longest.lines} lines`);
  t.true(longest.lines > 10, 'the measure sees the command registrations'); // a parser that saw nothing would pass the limit
});
