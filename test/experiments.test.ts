import test from 'ava';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import '../src/builtin.ts';
import { resolveTrainConfig } from '../src/cli/config.ts';
import { resolveMethodName } from '../src/methods/registry.ts';
import { getBackbone } from '../src/backbones/registry.ts';
import { getLearner } from '../src/learners/registry.ts';
import { UserError } from '../src/util/errors.ts';

const dir = path.resolve('experiments');

test('every experiment config validates and names a registered method, backbone and valid head options', async (t) => {
  const files = (await fs.readdir(dir)).filter((f) => f.endsWith('.json'));
  t.true(files.length > 0);
  for (const f of files) {
    const raw = JSON.parse(await fs.readFile(path.join(dir, f), 'utf8'));
    const config = await resolveTrainConfig(raw.method, { config: path.join(dir, f) });
    const { headId } = resolveMethodName(config.method);
    t.is(getBackbone(config.backbone).id, config.backbone, f);
    t.true(getLearner(headId).configSchema.safeParse(config.headConfig).success, `${f}: head options`);
  }
});

test('flags override the config file; bad values are user errors naming the field', async (t) => {
  const c = await resolveTrainConfig('protonet', { config: path.join(dir, 'protonet-cpu-5w1s.json'), shot: 5, episodes: 10 });
  t.is(c.test.shot, 5);
  t.is(c.episodes, 10);
  t.is(c.imageSize, 32);
  const err = await t.throwsAsync(resolveTrainConfig('protonet', { config: path.join(dir, 'protonet-cpu-5w1s.json'), imageSize: 2 }));
  t.true(err instanceof UserError && /imageSize/.test(err.message));
  await t.throwsAsync(resolveTrainConfig('protonet', { config: 'nope.json' }), { instanceOf: UserError });
});
