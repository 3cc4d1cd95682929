import { listBackbones } from '../backbones/registry.ts';
import { listDatasetProviders } from '../data/providers/registry.ts';
import { listLearners } from '../learners/registry.ts';
import { listWrappers } from '../methods/registry.ts';
import { listTransformSets } from '../transforms/registry.ts';
import { pluginRecords, registrationOrigins } from './software.ts';

/** One registered part and where it came from. */
export interface RegisteredPart {
  id: string;
  description: string;
  /** "fewshot (built in)" or the plugin module that registered it. */
  origin: string;
}

/** What `fewshot list` shows: every registry's parts (built in and from loaded plugins) and the plugins. */
export interface RegistryListing {
  format: 'fewshot-list/1';
  learners: RegisteredPart[];
  wrappers: RegisteredPart[];
  /** Every head × wrapper combination, by its method name. */
  methods: (RegisteredPart & { learner: string; wrapper: string })[];
  backbones: RegisteredPart[];
  transformSets: (RegisteredPart & { size: number })[];
  datasets: RegisteredPart[];
  plugins: ReturnType<typeof pluginRecords>;
}

/** Describe the registries as they are now (after any plugins were loaded). */
export function describeRegistries(): RegistryListing {
  const wrapperId = (suffix: string) => suffix || '(plain)';
  const learners = listLearners().map((h) => ({ id: h.id, description: h.description, origin: registrationOrigins('learners', h.id) }));
  const wrappers = listWrappers().map((w) => ({
    id: wrapperId(w.suffix),
    description: w.description,
    origin: registrationOrigins('wrappers', wrapperId(w.suffix)),
  }));
  const methods = listLearners().flatMap((h) =>
    listWrappers().map((w) => ({
      id: w.suffix ? `${h.id}-${w.suffix}` : h.id,
      description: `${h.description}; ${w.description}`,
      learner: h.id,
      wrapper: wrapperId(w.suffix),
      origin: [registrationOrigins('learners', h.id), registrationOrigins('wrappers', wrapperId(w.suffix))]
        .filter((o, i, all) => all.indexOf(o) === i)
        .join(' + '),
    })),
  );
  const backbones = listBackbones().map((b) => ({ id: b.id, description: b.description, origin: registrationOrigins('backbones', b.id) }));
  const transformSets = listTransformSets().map((t) => ({
    id: t.name,
    size: t.transforms.length,
    description: t.description,
    origin: registrationOrigins('transformSets', t.name),
  }));
  const datasets = listDatasetProviders().map((d) => ({ id: d.id, description: d.description, origin: registrationOrigins('datasets', d.id) }));
  return { format: 'fewshot-list/1', learners, wrappers, methods, backbones, transformSets, datasets, plugins: pluginRecords() };
}
