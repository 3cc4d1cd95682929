import type { Command } from 'commander';
import { loadPlugins } from '../context.ts';
import { jsonOption, printJson, pluginOption } from '../options.ts';
import type { RegisteredPart, RegistryListing } from '../../experiment/index.ts';

/** The listing as text: the parts by kind, then which origin (fewshot or a plugin) registered what. */
function printListing(l: RegistryListing): void {
  const out = (s: string) => process.stdout.write(s + '\n');
  const from = (origin: string) => (origin.startsWith('fewshot') ? '' : `  [plugin ${origin}]`);
  out('methods:');
  for (const m of l.methods) out(`  ${m.id}  — ${m.description}${from(m.origin.split(' + ').find((o) => !o.startsWith('fewshot')) ?? m.origin)}`);
  out('backbones:');
  for (const b of l.backbones) out(`  ${b.id}  — ${b.description}${from(b.origin)}`);
  out('transformation sets (for -sla, -sla-sd, -da, -mt):');
  for (const t of l.transformSets) out(`  ${t.id} (M=${t.size}) — ${t.description}${from(t.origin)}`);
  out('datasets (--dataset):');
  for (const d of l.datasets) out(`  ${d.id}  — ${d.description}${from(d.origin)}`);
  out('learners by origin:');
  const origins = [...new Set([...l.learners, ...l.wrappers, ...l.backbones, ...l.datasets].map((x) => x.origin))];
  for (const o of origins) {
    const of = (xs: RegisteredPart[]) => xs.filter((x) => x.origin === o).map((x) => x.id);
    const parts = [
      ['learners', of(l.learners)],
      ['wrappers', of(l.wrappers)],
      ['backbones', of(l.backbones)],
      ['datasets', of(l.datasets)],
    ]
      .filter(([, xs]) => xs.length)
      .map(([k, xs]) => `${k}: ${(xs as string[]).join(', ')}`);
    const rec = l.plugins.find((p) => p.module === o);
    out(
      `  ${o}${rec ? ` (${[rec.file, rec.package, rec.sha256 && `sha256 ${rec.sha256.slice(0, 12)}`].filter(Boolean).join(', ')})` : ''} — ${parts.join('; ')}`,
    );
  }
}

export function registerListCommand(program: Command): void {
  program
    .command('list')
    .description('list methods (head × wrapper), backbones, transformation sets and dataset providers, and where each came from')
    .addOption(pluginOption('modules that register extra heads/backbones/wrappers (repeat the flag for more)'))
    .addOption(jsonOption())
    .action(async (flags: { plugin?: string[]; json?: boolean }) => {
      await loadPlugins(flags.plugin);
      const listing = (await import('../../experiment/index.ts')).describeRegistries();
      if (flags.json) printJson(listing);
      else printListing(listing);
    });
}
