import { Worker } from 'node:worker_threads';

/**
 * Exit when the parent process dies. `npm run fewshot …` is a chain (npm → sh → node); `kill -9` of
 * npm cannot be forwarded, so the node process would run on as an orphan, still writing runs/. A
 * helper thread polls process.ppid (a fresh getppid(2) each read) every 200 ms and SIGKILLs the
 * whole process once the parent changed (the orphan was re-parented). It runs on its own thread
 * because the main thread can be busy in a long synchronous kernel (cpu backend) for seconds, and
 * SIGKILL is safe because every writer is crash-proof (util/atomic.ts).
 */
export function exitWithParent(): void {
  const parent = process.ppid;
  if (parent <= 1) return; // started by init / a container's pid 1: nothing to follow
  const code = `
    const { workerData } = require('node:worker_threads');
    setInterval(() => {
      if (process.ppid !== workerData.parent) process.kill(process.pid, 'SIGKILL');
    }, 200);
  `;
  const watcher = new Worker(code, { eval: true, workerData: { parent } });
  watcher.unref();
}
