import type { Command } from 'commander';
import { jsonOption, printJson } from '../options.ts';
import { commandLine } from '../common-flags.ts';

/** `fewshot compare A B` (library: experiment/compare.ts compareResults): the paired difference A − B. */
export function registerCompareCommand(program: Command): void {
  program
    .command('compare <resultA> <resultB>')
    .description('paired difference (A − B) with its 95% CI over the identical test episodes')
    .option('--mode-a <mode>', 'inference mode of A (default: its headline mode)')
    .option('--mode-b <mode>', 'inference mode of B (default: its headline mode)')
    .option('--out <file>', 'also write the comparison as JSON (atomically)')
    .addOption(jsonOption())
    .action(async (a: string, b: string, flags: { modeA?: string; modeB?: string; out?: string; json?: boolean }) => {
      const { compareResults } = await import('../../experiment/compare.ts');
      const c = await compareResults({
        a,
        b,
        modeA: flags.modeA,
        modeB: flags.modeB,
        out: flags.out,
        command: commandLine(),
      });
      if (flags.json) printJson(c);
      else {
        process.stdout.write(`A ${c.a.method} [${c.a.mode}]: ${c.a.accuracy.text}\n`);
        process.stdout.write(`B ${c.b.method} [${c.b.mode}]: ${c.b.accuracy.text}\n`);
        process.stdout.write(`A − B (paired over ${c.pairedDifference.n} episodes): ${c.pairedDifference.text} points (95% CI)\n`);
      }
      if (flags.out) (flags.json ? process.stderr : process.stdout).write(`wrote ${flags.out}\n`);
    });
}
