import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WorkerRequest } from './ours-worker.ts';

/** The engines the bench can time as ours: what `auto` picks (wasm-onednn where the addon loads), or one named. */
export const BENCH_BACKENDS = ['auto', 'wasm', 'wasm-onednn'] as const;
export type BenchBackend = (typeof BENCH_BACKENDS)[number];

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'ours-worker.ts');

export type OursWorkerResult = { ok: true; [key: string]: unknown } | { ok: false; error: string };

/** Run one workload of ours in a fresh node process (see ours-worker.ts) and return what it wrote. */
export async function runOursWorkload(req: Omit<WorkerRequest, 'resultFile'>, workDir: string, tag: string): Promise<OursWorkerResult> {
  const requestFile = path.join(workDir, `${tag}.request.json`);
  const resultFile = path.join(workDir, `${tag}.result.json`);
  await fs.rm(resultFile, { force: true });
  await fs.writeFile(requestFile, JSON.stringify({ ...req, resultFile }));
  const { code, signal, stderrTail } = await new Promise<{ code: number | null; signal: string | null; stderrTail: string[] }>((resolve, reject) => {
    // The thread count is the engine's whole: the wasm pool and oneDNN's OpenMP threads (src/backend/select.ts).
    const env = { ...process.env, FEWSHOT_WASM_THREADS: String(req.threads), FEWSHOT_ONEDNN_THREADS: String(req.threads) };
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER, requestFile], { stdio: ['ignore', 'ignore', 'pipe'], env });
    const tail: string[] = [];
    let partial = '';
    child.stderr.on('data', (c: Buffer) => {
      const lines = (partial + c.toString()).split('\n');
      partial = lines.pop() ?? '';
      // Keep short lines only: an uncaught wasm abort echoes the whole minified emscripten source line.
      for (const l of lines) if (l.trim() && l.length < 400) tail.push(l);
      tail.splice(0, Math.max(0, tail.length - 6));
    });
    child.on('error', reject);
    child.on('exit', (c, s) => resolve({ code: c, signal: s, stderrTail: tail }));
  });
  const written = await fs.readFile(resultFile, 'utf8').catch(() => undefined);
  if (written !== undefined) return JSON.parse(written) as OursWorkerResult;
  return { ok: false, error: `worker died (exit ${code}, signal ${signal}): ${stderrTail.join(' | ').slice(0, 500)}` };
}
