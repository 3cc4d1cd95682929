import test from 'ava';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { mkTmp, REPO_ROOT } from './fixtures/mini-imagenet.ts';

/**
 * Which file a plugin named by package (`--plugin relplug`) runs, with real packages on disk and the CLI run
 * the way a user runs it (`node bin/fewshot.js`, from the user's project folder): the copy installed in the
 * user's project, which is also the one hashed and recorded, even when another copy is reachable from
 * fewshot's own folder; a package installed only in the project is found. And a `.ts` plugin loaded as
 * CommonJS (no `"type": "module"`) is told the cure.
 */
const BIN = path.join(REPO_ROOT, 'bin', 'fewshot.js');
// A name no real package has; the copy beside fewshot is removed after the tests.
const NAME = `fewshot-test-relplug-${process.pid}`;
const ONLY_HERE = `fewshot-test-onlyhere-${process.pid}`;
const besideFewshot = path.join(REPO_ROOT, 'node_modules', NAME);
let project: string;

function cli(args: string[], cwd: string, env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd, timeout: 120_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/**
 * A plugin package that notes its version in $FEWSHOT_TEST_MARKER when imported (so the test sees which copy
 * ran, even one that cannot register), then registers the transformation set `id` (cheap: no model is built).
 */
async function writePackage(dir: string, name: string, version: string, id: string): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'package.json'), JSON.stringify({ name, version, type: 'module', exports: { '.': { import: './index.js' } } }));
  const file = path.join(dir, 'index.js');
  await fs.writeFile(
    file,
    [
      "import { appendFileSync } from 'node:fs';",
      `appendFileSync(process.env.FEWSHOT_TEST_MARKER, '${version}\\n');`,
      "const { registerTransformSet, getTransformSet } = await import('fewshot');",
      `registerTransformSet({ ...getTransformSet('rotation'), name: '${id}' });`,
    ].join('\n') + '\n',
  );
  return file;
}

test.before(async () => {
  project = await mkTmp('plugin-project');
  await fs.writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'user-project', version: '0.0.0', type: 'module' }));
  // the user's project has fewshot installed (a link to this checkout) and its own copy of the plugin
  await fs.mkdir(path.join(project, 'node_modules'));
  await fs.symlink(REPO_ROOT, path.join(project, 'node_modules', 'fewshot'));
  await writePackage(path.join(project, 'node_modules', NAME), NAME, '2.0.0', 'from-project');
  await writePackage(path.join(project, 'node_modules', ONLY_HERE), ONLY_HERE, '3.0.0', 'only-in-project');
  // another copy of the plugin, reachable from fewshot's own folder
  await writePackage(besideFewshot, NAME, '1.0.0', 'from-fewshot-folder');
});
test.after.always(async () => {
  await fs.rm(besideFewshot, { recursive: true, force: true });
  if (project) await fs.rm(project, { recursive: true, force: true });
});

test("a package-named plugin runs the copy in the user's project, the one recorded (file, package@version, sha256)", async (t) => {
  const marker = path.join(project, 'ran-relplug.txt');
  const out = await cli(['list', '--plugin', NAME, '--json'], project, { FEWSHOT_TEST_MARKER: marker });
  t.is(await fs.readFile(marker, 'utf8').catch(() => ''), '2.0.0\n', "the project's copy (2.0.0) ran, and only it");
  t.is(out.code, 0, out.stderr);
  const listed = JSON.parse(out.stdout);
  const names = listed.transformSets.map((s: { id: string }) => s.id);
  t.true(names.includes('from-project'), names.join(' '));
  t.false(names.includes('from-fewshot-folder'), 'the copy beside fewshot must not run');
  const [rec] = listed.plugins;
  const file = path.join(project, 'node_modules', NAME, 'index.js');
  t.is(rec.file, `node_modules/${NAME}/index.js`);
  t.is(rec.package, `${NAME}@2.0.0`);
  t.is(
    rec.sha256,
    createHash('sha256')
      .update(await fs.readFile(file))
      .digest('hex'),
  );
  t.deepEqual(rec.registered.transformSets, ['from-project']);
});

test("a plugin package installed only in the user's project is found", async (t) => {
  const out = await cli(['list', '--plugin', ONLY_HERE, '--json'], project, { FEWSHOT_TEST_MARKER: path.join(project, 'ran-onlyhere.txt') });
  t.is(out.code, 0, out.stderr);
  const listed = JSON.parse(out.stdout);
  t.is(listed.plugins[0].package, `${ONLY_HERE}@3.0.0`);
  t.deepEqual(listed.plugins[0].registered.transformSets, ['only-in-project']);
});

test('a plugin package found nowhere is a UserError naming where it was looked for', async (t) => {
  const out = await cli(['list', '--plugin', `${NAME}-absent`], project);
  t.is(out.code, 2, out.stderr);
  t.regex(out.stderr, new RegExp(`cannot find plugin package "${NAME}-absent" from ${project.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  t.regex(out.stderr, /fix: install it in your project/);
});

test('a .ts plugin loaded as CommonJS (no "type": "module") is told the cure; with it, it registers', async (t) => {
  const dir = path.join(project, 'cjs-folder');
  await fs.mkdir(dir);
  await fs.writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: 'cjs-folder', version: '0.0.0' }));
  await fs.copyFile(path.join(REPO_ROOT, 'examples', 'cosine-head.ts'), path.join(dir, 'cosine-head.ts'));
  const out = await cli(['list', '--plugin', './cjs-folder/cosine-head.ts'], project);
  t.is(out.code, 2, out.stderr);
  t.regex(
    out.stderr,
    /registered nothing: .*cosine-head\.ts was loaded as CommonJS \(its nearest package\.json, .*cjs-folder\/package\.json, has no "type": "module"\)/,
  );
  t.regex(out.stderr, /fix: add "type": "module" to .*cjs-folder\/package\.json, or rename the plugin to cosine-head\.mts/);
  // the cure named works
  await fs.writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: 'cjs-folder', version: '0.0.0', type: 'module' }));
  const cured = await cli(['list', '--plugin', './cjs-folder/cosine-head.ts', '--json'], project);
  t.is(cured.code, 0, cured.stderr);
  t.deepEqual(JSON.parse(cured.stdout).plugins[0].registered.learners, ['cosine']);
});
