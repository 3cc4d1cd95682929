/**
 * The numerics revision of fewshot's own compute kernels (src/backend/wasm/: Winograd convolutions, fused batch
 * norm + pool, matrix products, reductions, Adam, the SLA copies kernel; their C in native/kernels.c). A config
 * rerun on the same backend gives byte-identical results only under the same revision, so every result records
 * it (`software.engineRevision`) and `fewshot reproduce --dry-run` marks a result made under another revision
 * "done (older engine …)": its number stands, but a rerun today may not match it to the last digit.
 *
 * Bump it in the commit that changes what a kernel computes (its arithmetic, rounding or summation order), and
 * re-run or re-mark the reference results that matter. test/engine-revision.test.ts fails when the kernel
 * sources change, asking whether the change alters the numbers (bump) or not (update only the hash there).
 *
 * Scope: the `wasm` (and `cpu`) backends' own kernels. The oneDNN accelerator (issue 27, backend `wasm-onednn`,
 * src/backend/wasm/onednn*.ts and native/onednn/) is outside it: its results record `backend.choice` and
 * `backend.accelerator` (oneDNN's version, ISA, threads) instead.
 *
 * History: 1 — first recorded (2026-12-07); results written before carry no revision and count as older.
 */
export const ENGINE_REVISION = 1;
