import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
// @ts-expect-error: a plain .mjs script without type declarations
import { apiMarkdown, BEGIN, END, publicApi } from '../scripts/public-api.mjs';
import { REPO_ROOT } from './fixtures/mini-imagenet.ts';
import * as api from '../src/index.ts';

type Entry = { name: string; kind: string; summary: string };

/**
 * The public API (src/index.ts) is what a plugin or a script needs, each name documented: read with the
 * TypeScript type checker (slow tier: it type-checks the whole source tree).
 */
let entries: Entry[];
test.before(() => {
  entries = publicApi();
});

test('every exported name has a TSDoc summary at its declaration', (t) => {
  t.true(entries.length > 50);
  t.deepEqual(
    entries.filter((e) => !e.summary).map((e) => e.name),
    [],
  );
});

test('docs/api.md lists exactly the exported names with their summaries (node scripts/public-api.mjs --write)', (t) => {
  const doc = readFileSync(path.join(REPO_ROOT, 'docs', 'api.md'), 'utf8');
  const listed = doc.split(BEGIN)[1]?.split(END)[0];
  t.is(listed?.trim(), apiMarkdown(entries).trim());
});

test('internals stay internal: registration origins, portable paths, config hashing, package paths', (t) => {
  for (const name of [
    'withRegistrationOrigin',
    'registrationOrigin',
    'BUILTIN_ORIGIN',
    'portablePath',
    'resolvePortablePath',
    'configHash',
    'packageRoot',
    'learnerOrigin',
    'softwareVersions',
    'EpisodeShape',
  ]) {
    t.false(name in api, name);
  }
  // What the README, docs, examples and shipped plugins import is there.
  for (const name of [
    'registerHead',
    'registerDatasetProvider',
    'writeImageCache',
    'runExperiment',
    'validateConfig',
    'loadPlugins',
    'meanCI',
    'classMeans',
    'learnerVariable',
    'tf',
    'z',
  ]) {
    t.true(name in api, name);
  }
});
