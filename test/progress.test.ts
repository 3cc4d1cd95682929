import test from 'ava';
import { etaSeconds, startProgress } from '../src/util/progress.ts';
import { validationsLeft } from '../src/train/trainer.ts';

// The progress a real training reports (validations kept out of the rate): progress.slow.test.ts.

/** The ETA counts only the work this process did, from the time it started on it. */
test('etaSeconds: rate from the units done since `from`', (t) => {
  t.is(etaSeconds(10, 100, 1000), 90);
  // A run resumed at 40,000 of 60,000 that did 1,000 episodes in 500 s has 19,000 left at 0.5 s each.
  t.is(etaSeconds(500, 41000, 60000, 40000), 9500);
  t.is(etaSeconds(5, 40000, 60000, 40000), Infinity);
});

test('a handle made at the first report uses the start it is given, not its own creation', (t) => {
  const lines: string[] = [];
  // Made 60 s after training started, at episode 100 of a run resumed from 0: 0.6 s an episode.
  const p = startProgress('train', 1000, { from: 0, startedAt: performance.now() - 60_000 }, 20, (l) => lines.push(l));
  p.update(100, { loss: 1 });
  t.is(lines.length, 1);
  const m = /train: 100\/1000 \(10\.0%\) elapsed 1m0\ds ETA (\d+)m(\d+)s loss 1/.exec(lines[0]);
  t.truthy(m, lines[0]);
  const eta = Number(m![1]) * 60 + Number(m![2]);
  t.true(eta >= 539 && eta <= 542, `ETA ${eta} s, expected 540 s`);
});

test('a resumed run: ETA from the episodes trained since the resume', (t) => {
  const lines: string[] = [];
  const p = startProgress('train', 60000, { from: 40000, startedAt: performance.now() - 100_000 }, 20, (l) => lines.push(l));
  p.update(40200);
  // 200 episodes in 100 s: 19,800 left at 0.5 s = 2h45m.
  t.regex(lines[0], /ETA 2h45m/);
});

test('time outside the counted units (validations) is kept out of the rate and the time still to come is added', (t) => {
  const lines: string[] = [];
  // Resumed at 10,000 of 40,000: 100 episodes in 290 s, of which a validation took 180 s (1.1 s an episode).
  const p = startProgress('train', 40000, { from: 10000, startedAt: performance.now() - 290_000 }, 20, (l) => lines.push(l));
  p.update(10100, undefined, { spentSeconds: 180, pendingSeconds: 15 * 180 });
  // 29,900 episodes at 1.1 s = 32,890 s, and 15 validations of 180 s: 35,590 s = 9h53m (without the split: 24h05m).
  t.regex(lines[0], /ETA 9h53m/);
});

test('validationsLeft follows the training loop: every multiple of `every` after the episode, and the last episode', (t) => {
  const cfg = (episodes: number, every: number) => ({ episodes, validation: { every } }) as Parameters<typeof validationsLeft>[0];
  t.is(validationsLeft(cfg(40000, 2000), 10000), 15);
  t.is(validationsLeft(cfg(40000, 2000), 9913), 16);
  t.is(validationsLeft(cfg(1000, 300), 0), 4); // 300, 600, 900 and the last episode
  t.is(validationsLeft(cfg(1000, 300), 1000), 0);
  t.is(validationsLeft(cfg(1000, 0), 500), 1); // only at the end
});
