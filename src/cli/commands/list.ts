import type { Command } from 'commander';
import { loadPlugins } from '../context.ts';
import { jsonOption, printJson, pluginOption } from '../options.ts';

interface Listed {
  id: string;
  description: string;
  /** "fewshot (built in)" or the plugin module that registered it. */
  origin: string;
}

export function registerListCommand(program: Command): void {
  program
    .command('list')
    .description('list methods (head × wrapper), backbones, transformation sets and dataset providers, and where each came from')
    .addOption(pluginOption('modules that register extra heads/backbones/wrappers (repeat the flag for more)'))
    .addOption(jsonOption())
    .action(async (flags: { plugin?: string[]; json?: boolean }) => {
      await loadPlugins(flags.plugin);
      const { listLearners } = await import('../../learners/registry.ts');
      const { listWrappers } = await import('../../methods/registry.ts');
      const { listBackbones } = await import('../../backbones/registry.ts');
      const { listTransformSets } = await import('../../transforms/registry.ts');
      const { listDatasetProviders } = await import('../../data/providers/registry.ts');
      const { registrationOrigins, pluginRecords } = await import('../../experiment/software.ts');
      const learners: Listed[] = listLearners().map((h) => ({ id: h.id, description: h.description, origin: registrationOrigins('learners', h.id) }));
      const wrappers: Listed[] = listWrappers().map((w) => ({ id: w.suffix || '(plain)', description: w.description, origin: registrationOrigins('wrappers', w.suffix || '(plain)') }));
      const methods = listLearners().flatMap((h) => listWrappers().map((w) => ({
        id: w.suffix ? `${h.id}-${w.suffix}` : h.id, description: `${h.description}; ${w.description}`,
        learner: h.id, wrapper: w.suffix || '(plain)', origin: [registrationOrigins('learners', h.id), registrationOrigins('wrappers', w.suffix || '(plain)')].filter((o, i, all) => all.indexOf(o) === i).join(' + '),
      })));
      const backbones: Listed[] = listBackbones().map((b) => ({ id: b.id, description: b.description, origin: registrationOrigins('backbones', b.id) }));
      const transformSets = listTransformSets().map((t) => ({ id: t.name, size: t.transforms.length, description: t.description, origin: registrationOrigins('transformSets', t.name) }));
      const datasets: Listed[] = listDatasetProviders().map((d) => ({ id: d.id, description: d.description, origin: registrationOrigins('datasets', d.id) }));
      if (flags.json) {
        printJson({ format: 'fewshot-list/1', learners, wrappers, methods, backbones, transformSets, datasets, plugins: pluginRecords() });
        return;
      }
      const out = (s: string) => process.stdout.write(s + '\n');
      const from = (origin: string) => (origin.startsWith('fewshot') ? '' : `  [plugin ${origin}]`);
      out('methods:');
      for (const m of methods) out(`  ${m.id}  — ${m.description}${from(m.origin.split(' + ').find((o) => !o.startsWith('fewshot')) ?? m.origin)}`);
      out('backbones:');
      for (const b of backbones) out(`  ${b.id}  — ${b.description}${from(b.origin)}`);
      out('transformation sets (for -sla, -sla-sd, -da, -mt):');
      for (const t of transformSets) out(`  ${t.id} (M=${t.size}) — ${t.description}${from(t.origin)}`);
      out('datasets (--dataset):');
      for (const d of datasets) out(`  ${d.id}  — ${d.description}${from(d.origin)}`);
      out('learners by origin:');
      const origins = [...new Set([...learners, ...wrappers, ...backbones, ...datasets].map((x) => x.origin))];
      for (const o of origins) {
        const of = (xs: Listed[]) => xs.filter((x) => x.origin === o).map((x) => x.id);
        const parts = [['learners', of(learners)], ['wrappers', of(wrappers)], ['backbones', of(backbones)], ['datasets', of(datasets)]].filter(([, xs]) => xs.length).map(([k, xs]) => `${k}: ${(xs as string[]).join(', ')}`);
        const rec = pluginRecords().find((p) => p.module === o);
        out(`  ${o}${rec ? ` (${[rec.file, rec.package, rec.sha256 && `sha256 ${rec.sha256.slice(0, 12)}`].filter(Boolean).join(', ')})` : ''} — ${parts.join('; ')}`);
      }
    });
}
