import type { Command } from 'commander';
import { loadPlugins } from '../context.ts';
import { listHeads } from '../../learners/registry.ts';
import { listWrappers } from '../../methods/registry.ts';
import { listBackbones } from '../../backbones/registry.ts';
import { listTransformSets } from '../../transforms/registry.ts';
import { listDatasetProviders } from '../../data/providers/registry.ts';

export function registerListCommand(program: Command): void {
  program
    .command('list')
    .description('list methods (head × wrapper), backbones, transformation sets and dataset providers')
    .option('--plugin <module...>', 'modules that register extra heads/backbones/wrappers')
    .action(async (flags: { plugin?: string[] }) => {
      await loadPlugins(flags.plugin);
      const out = (s: string) => process.stdout.write(s + '\n');
      out('methods:');
      for (const h of listHeads()) for (const w of listWrappers()) out(`  ${w.suffix ? `${h.id}-${w.suffix}` : h.id}  — ${h.description}; ${w.description}`);
      out('backbones:');
      for (const b of listBackbones()) out(`  ${b.id}  — ${b.description}`);
      out('transformation sets (for -sla, -sla-sd, -da, -mt):');
      for (const t of listTransformSets()) out(`  ${t.name} (M=${t.transforms.length}) — ${t.description}`);
      out('datasets (--dataset):');
      for (const d of listDatasetProviders()) out(`  ${d.id}  — ${d.description}`);
    });
}
