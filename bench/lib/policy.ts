/**
 * How many steps to run: warm up (at most `warmupSteps`, stopping early once `warmupSeconds` have passed, at least
 * one step), then time at least `minSteps` and at most `maxSteps`, stopping once `budgetSeconds` have passed.
 * bench/peer/torch_peer.py implements the same rule (run_policy), so both sides are measured alike; the budget
 * keeps the slow workloads (84 px with SLA: 320-400 images a step) inside the suite's wall-time target.
 */
export interface StepPolicy {
  warmupSteps: number;
  warmupSeconds: number;
  minSteps: number;
  maxSteps: number;
  budgetSeconds: number;
}

export const FULL_POLICY: StepPolicy = { warmupSteps: 5, warmupSeconds: 2, minSteps: 3, maxSteps: 25, budgetSeconds: 4 };
export const QUICK_POLICY: StepPolicy = { warmupSteps: 2, warmupSeconds: 1, minSteps: 3, maxSteps: 10, budgetSeconds: 2 };

export interface PolicyRun<V> {
  /** Warm-up steps: time and the value the step returned (loss or accuracy), in order. */
  warmup: { ms: number; value: V }[];
  timesMs: number[];
}

/** Run `step(i)` (i counts all steps from 0, warm-up included) under the policy. */
export function runPolicy<V>(step: (i: number) => V, policy: StepPolicy): PolicyRun<V> {
  const warmup: { ms: number; value: V }[] = [];
  let start = performance.now();
  for (let i = 0; i < Math.max(1, policy.warmupSteps); i++) {
    const t0 = performance.now();
    const value = step(i);
    warmup.push({ ms: performance.now() - t0, value });
    if (performance.now() - start >= policy.warmupSeconds * 1000) break;
  }
  const timesMs: number[] = [];
  start = performance.now();
  let i = warmup.length;
  while (timesMs.length < policy.maxSteps) {
    const t0 = performance.now();
    step(i++);
    timesMs.push(performance.now() - t0);
    if (timesMs.length >= policy.minSteps && performance.now() - start >= policy.budgetSeconds * 1000) break;
  }
  return { warmup, timesMs };
}
