import type { Command } from 'commander';
import { loadPlugins } from '../context.ts';
import { listHeads } from '../../learners/registry.ts';
import { listWrappers } from '../../methods/registry.ts';
import { listBackbones } from '../../backbones/registry.ts';

export function registerListCommand(program: Command): void {
  program
    .command('list')
    .description('list methods (head × wrapper), backbones and transformation sets')
    .option('--plugin <module...>', 'modules that register extra heads/backbones/wrappers')
    .action(async (flags: { plugin?: string[] }) => {
      await loadPlugins(flags.plugin);
      const out = (s: string) => process.stdout.write(s + '\n');
      out('methods:');
      for (const h of listHeads()) for (const w of listWrappers()) out(`  ${w.suffix ? `${h.id}-${w.suffix}` : h.id}  — ${h.description}; ${w.description}`);
      out('backbones:');
      for (const b of listBackbones()) out(`  ${b.id}  — ${b.description}`);
      try {
        const { listTransforms } = await import('../../transforms/registry.ts');
        out('transformation sets:');
        for (const t of listTransforms() as { name: string; size: number }[]) out(`  ${t.name} (M=${t.size})`);
      } catch {
        /* transforms not available */
      }
    });
}
