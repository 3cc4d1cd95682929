import test from 'ava';
import { FEWSHOT_API_VERSION, UserError, buildMethod, listLearners, registerHead, selectBackend, tf, z, type FewShotHead } from 'fewshot';
import { withRegistrationOrigin } from '../src/util/plugin-origin.ts';
import { buildMethod as buildFromSources } from '../src/methods/build.ts';

test.before(async () => {
  await selectBackend('cpu');
});

const meanHead = (id: string, logits: FewShotHead['logits']) => ({
  id,
  apiVersion: FEWSHOT_API_VERSION,
  description: 'test head',
  configSchema: z.object({ k: z.number().default(1) }).strict(),
  create: (): FewShotHead => ({ id, variables: () => [], logits }),
});

function episode(way: number) {
  return {
    supportImages: tf.randomNormal([way, 8, 8, 3], 0, 1, 'float32', 1) as tf.Tensor4D,
    supportLabels: Int32Array.from({ length: way }, (_, i) => i),
    queryImages: tf.randomNormal([2 * way, 8, 8, 3], 0, 1, 'float32', 2) as tf.Tensor4D,
    queryLabels: Int32Array.from({ length: 2 * way }, (_, i) => i % way),
    way,
  };
}

test("'fewshot' resolves to this repository's sources: one registry for built-ins and plugins", (t) => {
  t.is(buildMethod, buildFromSources);
  t.true(listLearners().some((l) => l.id === 'protonet'));
});

test('a plugin head imported via fewshot registers and builds with every wrapper', async (t) => {
  await withRegistrationOrigin('test-plugin.ts', async () => registerHead(meanHead('test-dot', (ep) => tf.matMul(ep.query, ep.support, false, true))));
  const m = buildMethod({ name: 'test-dot-sla', backbone: 'conv4', imageSize: 8, way: 2, seed: 0 });
  t.deepEqual(m.predict(episode(2)).ag.shape, [4, 2]);
});

test('a head returning logits of the wrong shape fails on the first episode, naming the plugin and the field', async (t) => {
  await withRegistrationOrigin('bad-shape.ts', async () =>
    registerHead(meanHead('test-wide', (ep) => tf.zeros([ep.query.shape[0], ep.way * 5]) as tf.Tensor2D)),
  );
  const m = buildMethod({ name: 'test-wide', backbone: 'conv4', imageSize: 8, way: 2, seed: 0 });
  const err = t.throws(() => m.trainLoss(episode(2)), { instanceOf: UserError });
  t.regex(err!.message, /learner "test-wide" \(plugin bad-shape\.ts\): "logits" returned logits of shape \[4, 10\], expected \[4, 2\]/);
});

test('plugin mistakes are UserErrors naming the plugin and the field', async (t) => {
  const reg = (origin: string, f: unknown) => withRegistrationOrigin(origin, async () => registerHead(f as never));
  await t.throwsAsync(reg('p1.ts', { ...meanHead('test-nocreate', () => tf.zeros([1, 1]) as tf.Tensor2D), create: undefined }), {
    instanceOf: UserError,
    message: /"test-nocreate" \(plugin p1\.ts\): required function "create" is missing/,
  });
  await t.throwsAsync(reg('p2.ts', { ...meanHead('test-v2', () => tf.zeros([1, 1]) as tf.Tensor2D), apiVersion: '2.0' }), {
    instanceOf: UserError,
    message: /plugin p2\.ts.*"apiVersion": apiVersion 2\.0 is incompatible/,
  });
  await t.throwsAsync(
    reg(
      'p3.ts',
      meanHead('protonet', () => tf.zeros([1, 1]) as tf.Tensor2D),
    ),
    { instanceOf: UserError, message: /"protonet" \(plugin p3\.ts\): is registered twice \(first by fewshot \(built in\)\)/ },
  );
  await reg('p4.ts', { ...meanHead('test-nologits', () => tf.zeros([1, 1]) as tf.Tensor2D), create: () => ({ id: 'test-nologits', variables: () => [] }) });
  t.throws(() => buildMethod({ name: 'test-nologits', backbone: 'conv4', imageSize: 8, way: 2, seed: 0 }), {
    instanceOf: UserError,
    message: /plugin p4\.ts\): required function "logits" is missing/,
  });
  await reg(
    'p5.ts',
    meanHead('test-schema', () => tf.zeros([1, 1]) as tf.Tensor2D),
  );
  t.throws(() => buildMethod({ name: 'test-schema', backbone: 'conv4', imageSize: 8, way: 2, seed: 0, headConfig: { k: 'x' } }), {
    instanceOf: UserError,
    message: /"test-schema" \(plugin p5\.ts\): k: /,
  });
  await reg(
    'p6.ts',
    meanHead('test-throws', () => {
      throw new Error('boom');
    }),
  );
  const m = buildMethod({ name: 'test-throws', backbone: 'conv4', imageSize: 8, way: 2, seed: 0 });
  t.throws(() => m.trainLoss(episode(2)), { instanceOf: UserError, message: /"test-throws" \(plugin p6\.ts\): "logits" threw: boom/ });
});
