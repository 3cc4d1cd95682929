#!/usr/bin/env node
// Launcher. In a source checkout (src/ present) it runs the TypeScript CLI through tsx, so development needs
// no build step; an installed package has no src/ and runs the compiled dist/. tsx is still registered there
// when an argument names a .ts file, so `--plugin ./my-head.ts` works from an installed package too.
import { existsSync } from 'node:fs';

const sources = new URL('../src/cli/main.ts', import.meta.url);
const fromSources = existsSync(sources);
if (fromSources || process.argv.slice(2).some((a) => /\.[cm]?ts$/.test(a))) {
  const { register } = await import('tsx/esm/api');
  register();
}
if (fromSources) {
  // Plugins' `import … from 'fewshot'` must load these same sources (one registry), not a built dist/.
  const hook = `export function resolve(s, c, next) { return next(s, { ...c, conditions: [...c.conditions, 'fewshot-source'] }); }`;
  (await import('node:module')).register(`data:text/javascript,${encodeURIComponent(hook)}`);
}
await import(fromSources ? sources.href : new URL('../dist/cli/main.js', import.meta.url).href);
