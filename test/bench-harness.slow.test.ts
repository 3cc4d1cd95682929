import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { workloads } from '../bench/lib/workloads.ts';

/*
 * The bench harness (bench/run.ts, issue 27 #6): its workload list holds MetaOptNet end to end at the repository's
 * protocol, and one real invocation (ours only, the smallest workload, 1 thread) records the thread count and the
 * engine, writes only to --out, and bench/table.ts prints the 1-thread columns from it.
 */

const RUN = ['--import', 'tsx', 'bench/run.ts'];

test('the full suite holds MetaOptNet-SVM and -RR end to end at the experiments protocol', (t) => {
  const all = workloads(false);
  t.is(new Set(all.map((w) => w.id)).size, all.length, 'workload ids are unique');
  const train = all.find((w) => w.id === 'train/metaoptnet-svm-sla/32px/5w5s6q');
  t.like(train?.spec, { method: 'metaoptnet-svm-sla', imageSize: 32, way: 5, shot: 5, query: 6, headConfig: { C: 0.1, labelSmoothing: 0.1 } });
  t.like(all.find((w) => w.id === 'eval/metaoptnet-rr/32px/5w5s')?.spec, {
    method: 'metaoptnet-rr',
    shot: 5,
    query: 15,
    headConfig: { lambda: 50, labelSmoothing: 0.1 },
  });
  t.like(all.find((w) => w.id === 'train/resnet12/metaoptnet-svm/32px/5w15s6q')?.spec, { backbone: 'resnet12', shot: 15, query: 6 });
  t.like(all.find((w) => w.id === 'train/resnet12/metaoptnet-rr-sla/32px/5w5s6q')?.spec, { backbone: 'resnet12', shot: 5, query: 6 });
  // --quick keeps the 32 px Conv-4 ones only
  const quick = workloads(true)
    .filter((w) => w.spec?.method.startsWith('metaoptnet'))
    .map((w) => w.id);
  t.true(quick.length === 8 && quick.every((id) => id.includes('/32px/') && !id.includes('resnet12')), quick.join(', '));
});

test('a bench at --threads 1 records the thread count and engine, writes only to --out, and the table prints it', (t) => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'fewshot-bench-test-'));
  try {
    const r = spawnSync(process.execPath, [...RUN, '--quick', '--no-peer', '--only', 'head/metaoptnet-rr/2000v', '--threads', '1', '--out', out], {
      encoding: 'utf8',
      timeout: 600_000,
    });
    t.is(r.status, 0, r.stderr);
    const files = readdirSync(out).sort();
    t.is(files.length, 2, files.join(', '));
    t.regex(files[0], /^bench-.+Z-quick-t1\.json$/);
    t.is(files[1], 'latest.json');
    const report = JSON.parse(readFileSync(path.join(out, 'latest.json'), 'utf8'));
    t.deepEqual(report.threads, [1]);
    const engine = report.ours.engines['1'];
    t.is(engine.wasmThreads, 1);
    if (engine.backend === 'wasm-onednn') t.is(engine.onednn.threads, 1);
    else t.is(engine.backend, 'wasm');
    const [w] = report.workloads;
    t.like(w, { id: 'head/metaoptnet-rr/2000v', threads: 1, ours: { ok: true, threads: 1 } });
    t.regex(w.ours.engine, /1 wasm threads/);
    const table = spawnSync(process.execPath, ['--import', 'tsx', 'bench/table.ts', path.join(out, 'latest.json')], { encoding: 'utf8' });
    t.is(table.status, 0, table.stderr);
    t.regex(table.stdout, /\| 1t ours ms \| 1t PyTorch ms \| 1t ratio \|/);
    t.regex(table.stdout, /\| `head\/metaoptnet-rr\/2000v` \| [\d,]+ \| – \|/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('--threads outside 1 and 2 is refused with exit 2 and the fix', (t) => {
  const r = spawnSync(process.execPath, [...RUN, '--threads', '4', '--list'], { encoding: 'utf8' });
  t.is(r.status, 2);
  t.regex(r.stderr, /--threads 4 is not a list of thread counts\n {2}fix: use 1, 2 or 1,2/);
});
