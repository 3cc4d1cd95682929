import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './fixtures/mini-imagenet.ts';
import { ENGINE_REVISION } from '../src/backend/engine-revision.ts';
import { olderEngineNote } from '../src/experiment/engine.ts';
import { softwareVersions } from '../src/experiment/software.ts';

/*
 * Issue 32 #6: results record the numerics revision of the kernels that made them, and `reproduce --dry-run`
 * marks a result of another revision "done (older engine …)". The revision is bumped by hand; this test notices
 * a kernel change that did not decide whether to bump it.
 */

/**
 * sha256 over the kernel sources (every file git tracks under src/backend/wasm/ but the oneDNN glue, by path and content) as of
 * ENGINE_REVISION. When this test fails you changed a kernel source: if the change alters what any kernel
 * computes (arithmetic, rounding, summation order: a run's numbers), bump ENGINE_REVISION in
 * src/backend/engine-revision.ts; either way, set this hash to the one the failure prints.
 */
const KERNEL_SOURCES_SHA256 = '9d2a6c082e1fbcfbd80c0c5db3ee7eeacec07bf748f0782479e37ae67c1bfc43';

function kernelSourcesSha256(): string {
  // The oneDNN accelerator (onednn*.ts, native/onednn/) is a backend of its own, `wasm-onednn`, outside the revision.
  const files = execFileSync('git', ['ls-files', 'src/backend/wasm'], { cwd: REPO_ROOT })
    .toString()
    .trim()
    .split('\n')
    .filter((f) => !/onednn/.test(f))
    .sort();
  const hash = createHash('sha256');
  for (const f of files)
    hash
      .update(`${f}\n`)
      .update(readFileSync(path.join(REPO_ROOT, f)))
      .update('\n');
  return hash.digest('hex');
}

test('the kernel sources are those of the recorded engine revision (else decide: bump ENGINE_REVISION or only the hash)', (t) => {
  const actual = kernelSourcesSha256();
  t.is(
    actual,
    KERNEL_SOURCES_SHA256,
    `src/backend/wasm changed since engine revision ${ENGINE_REVISION} was recorded: bump ENGINE_REVISION (src/backend/engine-revision.ts) if the change alters any kernel's numbers, then set KERNEL_SOURCES_SHA256 in test/engine-revision.test.ts to ${actual}`,
  );
});

test('a result records the engine revision; one of another or no revision is marked older, naming its commit', (t) => {
  const software = softwareVersions();
  t.is(software.engineRevision, String(ENGINE_REVISION));
  t.is(olderEngineNote({ software }), undefined);
  t.is(
    olderEngineNote({ software: { commit: '6a48c7b', fewshot: '0.1.0' } }),
    `older engine: made at commit 6a48c7b, engine revision not recorded, now ${ENGINE_REVISION}; a rerun may not match it exactly`,
  );
  t.regex(
    olderEngineNote({ software: { commit: 'abc1234', engineRevision: String(ENGINE_REVISION + 1) } }) ?? '',
    new RegExp(`^older engine: made at commit abc1234, engine revision ${ENGINE_REVISION + 1}, now ${ENGINE_REVISION};`),
  );
});
