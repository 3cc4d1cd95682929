#!/usr/bin/env node
// Launcher and supervisor: runs the CLI in a child node process and owns the signals. In a source checkout
// (src/ present) the child runs the TypeScript sources through tsx, so development needs no build step, with
// the `fewshot-source` export condition so that plugins' `import … from 'fewshot'` load these same sources (one
// registry); an installed package has no src/ and runs the compiled dist/ (tsx is still loaded when an argument
// names a .ts file, so `--plugin ./my-head.ts` works there too). The launcher owns the signals, because the child can be inside a long synchronous kernel (the cpu
// backend) where no JavaScript signal handler runs for seconds.
//  - SIGINT/SIGTERM: passed on to the child, which stops at its next step boundary with a clean
//    message; if it has not exited within STOP_GRACE_MS the launcher SIGKILLs it (safe: every writer
//    is crash-proof) and exits 130/143 itself. So every backend stops within a second.
//  - SIGUSR1: passed on with no deadline. The child finishes its training step, writes a checkpoint at
//    that episode and exits 138 (src/util/signal.ts); a SIGINT/SIGTERM after it still applies the deadline.
//  - The launcher's own parent dying (kill -9 of `npm run fewshot …`): the child is killed too; the
//    child also watches its own parent (src/util/orphan.ts), so no worker is left running.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const STOP_GRACE_MS = 800;
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const sources = path.join(root, 'src', 'cli', 'main.ts');
const fromSources = existsSync(sources);
const args = process.argv.slice(2);
// tsx is resolved from this package (a bare `--import tsx` would be looked up from the working directory,
// which fails whenever fewshot runs outside its own folder).
const loader = fromSources || args.some((a) => /\.[cm]?ts$/.test(a)) ? ['--import', import.meta.resolve('tsx')] : [];
const conditions = fromSources ? ['--conditions=fewshot-source'] : [];
const main = fromSources ? sources : path.join(root, 'dist', 'cli', 'main.js');
const child = spawn(process.execPath, [...process.execArgv, ...loader, ...conditions, main, ...args], { stdio: 'inherit' });

let stopping;
process.on('SIGUSR1', () => {
  if (!stopping) child.kill('SIGUSR1');
});
for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
]) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = signal;
    child.kill(signal);
    setTimeout(() => {
      child.kill('SIGKILL');
      process.stderr.write(`\nstopped by ${signal} (the step in progress was abandoned; every checkpoint, result and cache on disk is complete)\n`);
      process.exit(code);
    }, STOP_GRACE_MS).unref();
  });
}

// The processes whose death ends this one: the parent, and when the parent is the `sh -c` wrapper
// npm runs scripts in (dash does not exec the command, and survives npm's death as an orphan), the
// parent's parent too (npm itself). /proc is Linux; elsewhere only the parent is followed.
const parentOf = (pid) => {
  try {
    return Number(
      readFileSync(`/proc/${pid}/stat`, 'utf8')
        .replace(/^.*\) /s, '')
        .split(' ')[1],
    );
  } catch {
    return undefined;
  }
};
const isShellWrapper = (pid) => {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return /(^|\/)(sh|dash|bash)$/.test(argv[0]) && argv[1] === '-c';
  } catch {
    return false;
  }
};
const parent = process.ppid;
const grandparent = isShellWrapper(parent) ? parentOf(parent) : undefined;
const watch = setInterval(() => {
  const orphaned = (parent > 1 && process.ppid !== parent) || (grandparent !== undefined && grandparent > 1 && parentOf(parent) !== grandparent);
  if (orphaned) {
    child.kill('SIGKILL');
    process.exit(137);
  }
}, 200);

child.on('exit', (code, signal) => {
  clearInterval(watch);
  if (signal) {
    const codes = { SIGINT: 130, SIGTERM: 143, SIGKILL: 137, SIGUSR1: 138 };
    process.exit(stopping ? (stopping === 'SIGINT' ? 130 : 143) : (codes[signal] ?? 1));
  }
  process.exit(code ?? 1);
});
