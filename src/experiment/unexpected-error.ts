/*
 * An error that is neither bad input nor numerical: one clear line and a short stack (a few frames, each
 * cut short), never the megabytes of minified backend source node would print for an uncaught throw. When
 * the stack passes through a loaded plugin's file, the plugin is named and the exit code is 2 (the input,
 * a plugin, is at fault); otherwise it is an internal error, exit 1.
 */
const FRAMES = 5;
const FRAME_CHARS = 200;

export async function describeUnexpectedError(err: unknown): Promise<{ text: string; code: number }> {
  const e = err instanceof Error ? err : new Error(String(err));
  const message = (e.message || e.name).split('\n')[0].slice(0, 500);
  const frames = (e.stack ?? '')
    .split('\n')
    .filter((l) => /^\s+at /.test(l))
    .map((l) => l.trim().slice(0, FRAME_CHARS));
  const { loadedPlugins } = await import('./software.ts').catch(() => ({ loadedPlugins: () => [] as { module: string; file?: string }[] }));
  const plugin = loadedPlugins().find((p) => p.file && frames.some((f) => f.includes(p.file!)));
  const head = plugin ? `error: plugin "${plugin.module}" threw ${e.name}: ${message}` : `internal error: ${e.name}: ${message}`;
  const fix = plugin
    ? 'fix the plugin (the stack below points into it)'
    : 'this is a bug in fewshot; please report it with the command line and the stack below';
  const text = `${head}\n  fix: ${fix}\n${frames
    .slice(0, FRAMES)
    .map((f) => `    ${f}`)
    .join('\n')}\n`;
  return { text, code: plugin ? 2 : 1 };
}
