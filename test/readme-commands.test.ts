import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { REPO_ROOT } from './fixtures/mini-imagenet.ts';
import { buildProgram } from '../src/cli/program.ts';

/*
 * Issue 32 #5: every command the README shows is one the project knows. Each line of the README's `sh` blocks is
 * one of: an npm script of package.json (`npm ci`, `npm test`, `npm run <script>`, `npm pack`), a fewshot CLI call
 * (`npm run fewshot -- …` / `npx fewshot …`) whose command exists and whose every flag its `--help` lists (read from the CLI's command tree in-process), with
 * the repository files it names present, or `node` on a shipped example. Anything else fails here, so a new README
 * command comes with a check. (CI then runs some of them for real: pack-smoke runs the example from the tarball,
 * test/data-check.slow.test.ts runs `data check`, test/committed-results.slow.test.ts `run` with the default results folder.)
 */
const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string>; files: string[] };

function shellLines(markdown: string): string[] {
  const out: string[] = [];
  for (const block of markdown.matchAll(/```sh\n([\s\S]*?)```/g)) {
    // A line ending in a backslash continues on the next one: one command.
    for (const raw of block[1].replace(/\\\n\s*/g, ' ').split('\n')) {
      const line = raw.replace(/\s+#.*$/, '').trim();
      if (line) out.push(line);
    }
  }
  return out;
}

/** The fewshot arguments of a CLI call, or undefined for another kind of line. */
function cliArgs(line: string): string[] | undefined {
  const m = /^(?:npm run fewshot --|npx fewshot)\s+(.*)$/.exec(line);
  return m ? m[1].split(/\s+/) : undefined;
}

/** What `fewshot <commandPath> --help` prints (the CLI's own command tree, in-process), or commander's "unknown command". */
async function help(commandPath: string[]): Promise<string> {
  let command: Command = buildProgram();
  for (const name of commandPath) {
    const sub = command.commands.find((c) => c.name() === name || c.aliases().includes(name));
    if (!sub) return `error: unknown command '${name}'`;
    command = sub;
  }
  return command.helpInformation();
}

const lines = shellLines(readme);

test("the README shows commands, and never the developers' dataset folder", (t) => {
  t.true(lines.length >= 6, lines.join('\n'));
  t.false(readme.includes('../shared'));
  t.true(
    lines.some((l) => l.startsWith('npm run fewshot -- run protonet-sla')),
    'the main command',
  );
  t.true(lines.includes('npm test'), 'the test command');
});

for (const line of lines) {
  test(`README command: ${line}`, async (t) => {
    const args = cliArgs(line);
    if (args) {
      const top = await help([]);
      const command = [args[0]];
      t.regex(top, new RegExp(`^  ${args[0]}\\b`, 'm'), `fewshot has no command "${args[0]}"`);
      // A command group (data, episodes): the subcommand is the next word.
      if (/\[command\]/.test(await help(command)) && args[1] && !args[1].startsWith('-')) command.push(args[1]);
      const usage = await help(command);
      t.notRegex(usage, /unknown command/);
      for (const flag of args.filter((a) => a.startsWith('--')))
        t.true(usage.includes(`${flag} `) || usage.includes(`${flag}\n`), `\`fewshot ${command.join(' ')}\` has no flag ${flag}`);
      // Files of the repository the command names (configs, committed checkpoints, examples) exist.
      for (const a of args.filter((x) => /^(experiments|runs|examples|episodes)\//.test(x))) t.true(existsSync(path.join(REPO_ROOT, a)), `${a} does not exist`);
      return;
    }
    const npm = /^npm (ci|test|pack|run (\S+))(\s|$)/.exec(line);
    if (npm) {
      if (npm[2]) t.truthy(pkg.scripts[npm[2]], `package.json has no script "${npm[2]}"`);
      if (npm[1] === 'test') t.truthy(pkg.scripts.test);
      if (npm[1] === 'ci') t.true(existsSync(path.join(REPO_ROOT, 'package-lock.json')), 'npm ci needs the committed lockfile');
      if (npm[1] === 'pack') t.truthy(pkg.scripts.prepack, 'npm pack builds dist/ through prepack');
      return;
    }
    const node = /^node (\S+\.mjs)\b/.exec(line);
    if (node) {
      const inRepo = node[1].replace(/^node_modules\/fewshot\//, '');
      t.true(existsSync(path.join(REPO_ROOT, inRepo)), `${inRepo} does not exist`);
      if (node[1].startsWith('node_modules/fewshot/'))
        t.true(
          pkg.files.some((f) => inRepo.startsWith(f.replace(/\*.*$/, ''))),
          `${inRepo} is not shipped (package.json files)`,
        );
      return;
    }
    t.fail(`a README command this test does not know how to check: ${line}`);
  });
}

test("the README's local links lead to files", (t) => {
  for (const [, target] of readme.matchAll(/\]\(([^)#\s]+)\)/g)) {
    if (/^https?:/.test(target)) continue;
    t.true(existsSync(path.join(REPO_ROOT, target)), `README links to ${target}, which does not exist`);
  }
});
