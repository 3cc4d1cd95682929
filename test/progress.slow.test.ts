import test from 'ava';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { UncountedTime } from '../src/util/progress.ts';
import { prepareCache, trainExperiment, type ExperimentReporter } from '../src/experiment/index.ts';
import { makeEpisodes, writeEpisodeFile } from '../src/episodes/index.ts';
import { loadSplit } from '../src/data/index.ts';
import { buildFixture } from './fixtures/mini-imagenet.ts';
import '../src/builtin.ts';
import { tinyConfig } from './fixtures/configs.ts';

// The ETA arithmetic alone: progress.test.ts. Here a real (5-episode, 16 px) training reports through it.
test.serial('a training reports its validations as time outside the rate, and the validations still to come', async (t) => {
  const fx = await buildFixture(6);
  try {
    const updates: { done: number; uncounted?: UncountedTime }[] = [];
    const reporter: ExperimentReporter = {
      log: () => {},
      progress: () => ({ update: (done, _info, uncounted) => updates.push({ done, uncounted }), stop: () => {} }),
    };
    const cfg = tinyConfig(undefined, { episodes: 5, validation: { every: 2, episodes: 2 }, dataset: 'mini-imagenet' });
    const cache = path.join(fx.root, 'cache');
    await prepareCache({ dataset: 'mini-imagenet', data: fx.folderDir, cache }, 16);
    const valFile = path.join(fx.root, 'val.json');
    await writeEpisodeFile(valFile, makeEpisodes({ split: await loadSplit(cache, 'val'), spec: cfg.test, seed: 0, count: 2 }));
    await trainExperiment(cfg, { backend: 'cpu', cache, runs: path.join(fx.root, 'runs'), valFile }, { reporter });
    tf.disposeVariables();
    // The loss is reported every 100 episodes and at the last; validations at 2, 4 and the last episode, 5.
    t.deepEqual(
      updates.map((u) => u.done),
      [2, 4, 5, 5],
    );
    const [v2, v4, train5, v5] = updates.map((u) => u.uncounted!);
    t.true(v2.spentSeconds > 0 && v4.spentSeconds > v2.spentSeconds && v5.spentSeconds > v4.spentSeconds);
    t.is(train5.spentSeconds, v4.spentSeconds);
    // Still to come: the mean validation time so far × the validations left (2 after the first, 1 after the second).
    const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, b);
    t.true(close(v2.pendingSeconds, v2.spentSeconds * 2), JSON.stringify(v2));
    t.true(close(v4.pendingSeconds, (v4.spentSeconds / 2) * 1), JSON.stringify(v4));
    t.is(v5.pendingSeconds, 0);
  } finally {
    await fx.cleanup();
  }
});
