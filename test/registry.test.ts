import test from 'ava';
import { z } from 'zod';
import { Registry } from '../src/util/registry.ts';
import { UserError } from '../src/util/errors.ts';
import { BUILTIN_ORIGIN, withRegistrationOrigin } from '../src/util/plugin-origin.ts';
import { backbones, getBackbone, registerBackbone } from '../src/backbones/registry.ts';
import { getLearner, learners } from '../src/learners/registry.ts';
import { registerWrapper, wrappers } from '../src/methods/registry.ts';
import { getTransformSet, registerTransformSet, transformSets } from '../src/transforms/registry.ts';
import { datasetProviders, getDatasetProvider, registerDatasetProvider } from '../src/data/providers/registry.ts';
import '../src/builtin.ts';

/**
 * One registry behaviour for learners, backbones, method wrappers, transform sets and dataset providers: the
 * same id rule, required fields, apiVersion check, duplicate refusal naming the first origin, origin records,
 * and a `get` that throws a UserError naming close and known ids. Serial: the registration origin is global.
 */
interface Thing {
  id: string;
  description: string;
  create: () => number;
  apiVersion?: string;
}
const things = new Registry<Thing>({ kind: 'thing', registerWith: 'registerThing', required: { create: { type: 'function', fix: 'add create()' } } });
const thing = (id: string, extra: Partial<Thing> = {}): Thing => ({ id, description: 'a thing', create: () => 1, ...extra });

test.serial('register / get / list / origin', async (t) => {
  things.register(thing('alpha'));
  await withRegistrationOrigin('my-plugin.ts', async () => things.register(thing('beta-2')));
  t.deepEqual(things.ids(), ['alpha', 'beta-2']);
  t.deepEqual(
    things.list().map((x) => x.id),
    ['alpha', 'beta-2'],
  );
  t.is(things.get('beta-2').create(), 1);
  t.is(things.origin('alpha'), BUILTIN_ORIGIN);
  t.is(things.origin('beta-2'), 'my-plugin.ts');
  t.true(things.has('alpha'));
  t.false(things.has('gamma'));
});

test.serial('every registration mistake is a UserError naming the entry, the plugin and the fix', async (t) => {
  const reg = (origin: string, x: unknown) => withRegistrationOrigin(origin, async () => things.register(x as Thing));
  const cases: [unknown, RegExp][] = [
    [undefined, /^a plugin \(plugin p\.ts\) registered undefined instead of a thing object\n {2}fix: pass \{ id, description, create \} to registerThing$/],
    [
      thing('Bad_Id'),
      /^thing "Bad_Id" \(plugin p\.ts\): field "id" is not a valid name\n {2}fix: use lowercase letters, digits and dashes, starting with a letter$/,
    ],
    [
      { id: 'nodesc', create: () => 1 },
      /^thing "nodesc" \(plugin p\.ts\): field "description" is missing or not a string\n {2}fix: describe the thing in one line$/,
    ],
    [thing('nocreate', { create: undefined }), /^thing "nocreate" \(plugin p\.ts\): required function "create" is missing\n {2}fix: add create\(\)$/],
    [thing('v2', { apiVersion: '2.0' }), /^thing "v2" \(plugin p\.ts\): field "apiVersion": apiVersion 2\.0 is incompatible/],
    [thing('alpha'), /^thing "alpha" \(plugin p\.ts\): is registered twice \(first by fewshot \(built in\)\)\n {2}fix: give your thing a different id$/],
  ];
  for (const [x, message] of cases) {
    const err = await t.throwsAsync(reg('p.ts', x), { instanceOf: UserError });
    t.regex(err!.message, message);
  }
  t.false(things.has('v2'), 'a refused entry is not registered');
});

test.serial('get of an unknown id names the close ids and all known ones', (t) => {
  const err = t.throws(() => things.get('alpa'), { instanceOf: UserError });
  t.is(
    err!.message,
    'unknown thing "alpa" (did you mean "alpha"?)\n  fix: use one of: alpha, beta-2 (`fewshot list` shows them), or load a plugin that registers it with --plugin',
  );
});

test.serial('the five registries share the behaviour: unknown ids throw with the known ids, duplicates name the first origin', async (t) => {
  const unknown: [() => unknown, RegExp][] = [
    [() => getLearner('protonett'), /^unknown learner "protonett" \(did you mean "protonet"\?\)\n {2}fix: use one of: protonet, metaoptnet-svm, metaoptnet-rr/],
    [() => getBackbone('conv-4'), /^unknown backbone "conv-4" \(did you mean "conv4"\?\)\n {2}fix: use one of: conv4, resnet12, resnet12-narrow/],
    [() => wrappers.get('slaa'), /^unknown method wrapper "slaa" \(did you mean "sla"\?\)\n {2}fix: use one of: , sla, sla-sd, da, mt/],
    [() => getTransformSet('rotatio'), /^unknown transform set "rotatio" \(did you mean "rotation"\?\)\n {2}fix: use one of: rotation, rotation2/],
    [
      () => getDatasetProvider('cifarfs'),
      /^unknown dataset "cifarfs" \(did you mean "cifar-fs"\?\)\n {2}fix: use one of: mini-imagenet, folder, csv, cifar-fs/,
    ],
  ];
  for (const [get, message] of unknown) t.regex(t.throws(get, { instanceOf: UserError })!.message, message);

  const twice: [() => void, RegExp][] = [
    [() => registerBackbone({ ...backbones.get('conv4') }), /^backbone "conv4" \(plugin dup\.ts\): is registered twice \(first by fewshot \(built in\)\)/],
    [() => registerWrapper({ ...wrappers.get('sla') }), /^method wrapper "sla" \(plugin dup\.ts\): is registered twice/],
    [() => registerTransformSet({ ...transformSets.get('rotation') }), /^transform set "rotation" \(plugin dup\.ts\): is registered twice/],
    [() => registerDatasetProvider({ ...datasetProviders.get('folder') }), /^dataset provider "folder" \(plugin dup\.ts\): is registered twice/],
    [() => learners.register({ ...learners.get('protonet') }), /^learner "protonet" \(plugin dup\.ts\): is registered twice/],
  ];
  for (const [register, message] of twice) {
    const err = await t.throwsAsync(
      withRegistrationOrigin('dup.ts', async () => register()),
      { instanceOf: UserError },
    );
    t.regex(err!.message, message);
  }
  // apiVersion is checked for every kind, not only learners
  const err = await t.throwsAsync(
    withRegistrationOrigin('old.ts', async () => registerBackbone({ ...backbones.get('conv4'), id: 'conv4-v9', apiVersion: '9.0' } as never)),
    { instanceOf: UserError },
  );
  t.regex(err!.message, /^backbone "conv4-v9" \(plugin old\.ts\): field "apiVersion": apiVersion 9\.0 is incompatible/);
  // the id rule too (transform sets also allow "_", as the built-in names have)
  t.throws(() => registerDatasetProvider({ ...datasetProviders.get('folder'), id: 'My Data' }), {
    instanceOf: UserError,
    message: /dataset provider "My Data": field "id" is not a valid name/,
  });
  t.throws(() => registerTransformSet({ ...transformSets.get('rotation'), name: 'Rot' }), {
    instanceOf: UserError,
    message: /transform set "Rot": field "name" is not a valid name[\s\S]*"_" and "-"/,
  });
  t.throws(() => learners.register({ ...learners.get('protonet'), id: 'proto2', configSchema: z.number, create: () => undefined } as never), {
    instanceOf: UserError,
    message: /field "configSchema" is missing or not a zod schema/,
  });
});
