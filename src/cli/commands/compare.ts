import type { Command } from 'commander';
import { UserError } from '../../util/errors.ts';
import { jsonOption, printJson } from '../options.ts';

/**
 * `fewshot compare A B`: the paired difference A − B over identical episodes. Refuses results scored on
 * different episode files or different numbers of their episodes, since then the pairing (and the tighter
 * CI) would be meaningless.
 */
export function registerCompareCommand(program: Command): void {
  program
    .command('compare <resultA> <resultB>')
    .description('paired difference (A − B) with its 95% CI over the identical test episodes')
    .option('--mode-a <mode>', 'inference mode of A (default: its headline mode)')
    .option('--mode-b <mode>', 'inference mode of B (default: its headline mode)')
    .option('--out <file>', 'also write the comparison as JSON (atomically)')
    .addOption(jsonOption())
    .action(async (a: string, b: string, flags: { modeA?: string; modeB?: string; out?: string; json?: boolean }) => {
      const { readResult } = await import('../../reports/results.ts');
      const { formatCI, pairedDifference } = await import('../../eval/stats.ts');
      const { writeFileAtomic } = await import('../../util/atomic.ts');
      const { portableValue } = await import('../../util/portable-path.ts');
      const ra = await readResult(a);
      const rb = await readResult(b);
      if (ra.record.episodes.sha256 !== rb.record.episodes.sha256) {
        throw new UserError(`${a} and ${b} were scored on different episode files`, 'evaluate both on the same --test-file (the committed files under episodes/)');
      }
      const ma = flags.modeA ?? ra.record.inferenceModes[0];
      const mb = flags.modeB ?? rb.record.inferenceModes[0];
      for (const [r, m, f] of [[ra, ma, a], [rb, mb, b]] as const) {
        if (m === undefined || !r.perEpisode[m] || !r.record.summary?.[m]) {
          throw new UserError(`${f} has no inference mode "${m}"`, `use one of: ${(r.record.inferenceModes ?? Object.keys(r.perEpisode)).join(', ') || '(none: the result is incomplete, re-run its evaluation)'}`);
        }
      }
      const na = ra.perEpisode[ma].length;
      const nb = rb.perEpisode[mb].length;
      if (na !== nb) {
        throw new UserError(
          `${a} was scored on ${na} episodes and ${b} on ${nb} (of the same file): a paired difference needs the same episodes`,
          `evaluate both on the same number of episodes (the same --test-episodes, or none for the whole file): e.g. \`fewshot eval <checkpoint> --test-episodes ${Math.min(na, nb)}\``,
        );
      }
      const d = pairedDifference(ra.perEpisode[ma], rb.perEpisode[mb]);
      const side = (r: typeof ra, m: string, dir: string) => ({ result: dir, method: r.record.method, mode: m, accuracy: r.record.summary[m], seed: r.record.seed, data: r.record.data });
      const comparison = portableValue({
        format: 'fewshot-comparison/1',
        command: ['fewshot', ...process.argv.slice(2)].join(' '),
        createdAt: new Date().toISOString(),
        episodes: ra.record.episodes,
        a: side(ra, ma, a),
        b: side(rb, mb, b),
        pairedDifference: { ...d, text: formatCI(d), formula: 'mean ± 1.96·s/√n of per-episode (A − B) accuracies, s with n−1' },
      });
      if (flags.json) printJson(comparison);
      else {
        process.stdout.write(`A ${ra.record.method} [${ma}]: ${ra.record.summary[ma].text}\n`);
        process.stdout.write(`B ${rb.record.method} [${mb}]: ${rb.record.summary[mb].text}\n`);
        process.stdout.write(`A − B (paired over ${d.n} episodes): ${formatCI(d)} points (95% CI)\n`);
      }
      if (flags.out) {
        await writeFileAtomic(flags.out, JSON.stringify(comparison, null, 2) + '\n');
        (flags.json ? process.stderr : process.stdout).write(`wrote ${flags.out}\n`);
      }
    });
}
