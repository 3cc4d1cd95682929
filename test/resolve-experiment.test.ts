import test from 'ava';
import path from 'node:path';
import '../src/builtin.ts';
import { loadExperimentConfig } from '../src/experiment/config.ts';
import { trainExperiment } from '../src/experiment/experiment.ts';
import { resolveExperiment } from '../src/experiment/resolve.ts';
import { validateConfig, validatedConfig } from '../src/experiment/validate.ts';
import { episodeStream, sampleEpisode } from '../src/episodes/sampler.ts';
import { UserError } from '../src/util/errors.ts';

/**
 * The experiment resolves a typed experiment once (issue 28 #2): the config validated, `--data` applied to the
 * dataset's options, the dataset and the method (head, head options, backbone) checked, all before the backend
 * loads; and a training stream checks its spec once, not per episode, each episode carrying its spec.
 */
test('a config validateConfig returned is not parsed again; any other object is', async (t) => {
  const config = await loadExperimentConfig(undefined, { method: 'protonet', way: 2, shot: 1, query: 3 });
  t.is(validatedConfig(config), config);
  const copy = { ...config };
  const again = validatedConfig(copy);
  t.not(again, copy);
  t.deepEqual(again, config);
  t.is(validatedConfig(again), again);
  t.throws(() => validatedConfig({ ...config, test: { way: 1, shot: 1, query: 3 } }), {
    instanceOf: UserError,
    message: /test\.way: Too small: expected number to be >=2/,
  });
});

test('resolveExperiment: the dataset with --data applied, its options checked, the method and its head options resolved', async (t) => {
  const config = validateConfig({
    method: 'metaoptnet-svm-sla',
    episodes: 10,
    dataset: 'folder',
    headConfig: { C: 0.5 },
    test: { way: 5, shot: 1, query: 15 },
    train: { way: 5, shot: 1, query: 15 },
  });
  const resolved = resolveExperiment(config, 'some/images');
  t.is(resolved.config.datasetOptions.root, path.resolve('some/images'));
  t.is(resolved.dataset.provider.id, 'folder');
  t.is(resolved.dataset.name, 'images');
  t.is(resolved.method.headId, 'metaoptnet-svm');
  t.is(resolved.method.wrapper.suffix, 'sla');
  t.is(resolved.method.backbone.id, 'conv4');
  t.like(resolved.method.headConfig as object, { C: 0.5 });
  // an explicit dataset option wins over --data, as before
  t.is(resolveExperiment({ ...config, datasetOptions: { root: '/elsewhere' } }, 'some/images').config.datasetOptions.root, '/elsewhere');
});

test('every config mistake is reported before the backend loads (an unloadable backend is never reached)', async (t) => {
  const base = { method: 'protonet', episodes: 10, test: { way: 2, shot: 1, query: 3 }, train: { way: 2, shot: 1, query: 3 } };
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ ...base, headConfig: { nope: 1 } }, /invalid options for learner "protonet": \(options\): Unrecognized key: "nope"/],
    [{ ...base, backbone: 'conv-4' }, /unknown backbone "conv-4" \(did you mean "conv4"\?\)/],
    [{ ...base, method: 'protonet-slaa' }, /unknown method "protonet-slaa" \(did you mean "protonet-sla"\?\)/],
    [{ ...base, dataset: 'folder', datasetOptions: { root: '/x', nope: 1 } }, /invalid options for dataset "folder"/],
  ];
  for (const [config, message] of cases) {
    const err = await t.throwsAsync(trainExperiment(config as never, { backend: 'no-such-backend', runs: '/nonexistent/runs' }), { instanceOf: UserError });
    t.regex(err!.message, message);
  }
});

test('a training stream checks its spec once and draws what sampleEpisode draws, each episode carrying its spec', (t) => {
  const layout = { classOffsets: [0, 10, 20], itemsPerClass: [10, 10, 10] };
  const spec = { way: 3, shot: 2, query: 4 };
  const stream = episodeStream(layout, spec, { seed: 0, splitName: 'train' });
  for (const index of [0, 1, 7, 1000]) {
    const drawn = stream(index);
    t.deepEqual(drawn, sampleEpisode(layout, spec, { seed: 0, splitName: 'train', index }));
    t.deepEqual(drawn.spec, spec);
  }
  // a spec the split cannot give fails when the stream is made, before any episode is drawn
  t.throws(() => episodeStream(layout, { way: 4, shot: 1, query: 1 }, { seed: 0, splitName: 'train' }), {
    instanceOf: UserError,
    message: /needs 4 distinct classes, but split "train" has only 3/,
  });
  t.throws(() => stream(-1), { instanceOf: RangeError });
});
