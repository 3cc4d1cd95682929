// Plugin loading lives in the experiment layer (library callers need it too); imported on first use so
// that parsing flags loads no tfjs.
export async function loadPlugins(modules: string[] = []): Promise<void> {
  const { loadPlugins: load } = await import('../experiment/software.ts');
  await load(modules);
}
