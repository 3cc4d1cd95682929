#!/usr/bin/env node
// Lists functions longer than a limit (default 100 lines) in the TypeScript sources, with the TypeScript compiler's
// parser (so nested closures, arrow functions and methods all count, each with its own span). Exits 1 when a
// function over the limit is not on the allow-list below: the numeric kernels and the pickle interpreter, whose
// long bodies are one tight loop or one opcode switch that reads worse split.
//   node scripts/long-functions.mjs [--max 100] [--all]     (--all also prints the allowed ones)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SCANNED = ['src', 'bench', 'plugins', 'examples', 'scripts'];

/**
 * `file` (relative, posix) → function names allowed over the limit, with why. Keep this list short: a new entry
 * needs a reason a reviewer accepts.
 */
export const ALLOWED = {
  'src/data/readers/pickle.ts': { '*': 'the pickle interpreter: one opcode switch' },
  'src/backend/wasm/': { '*': 'numeric kernels: one tight loop each' },
};

function sourceFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'vendor' || name.startsWith('.')) continue;
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...sourceFiles(full));
    else if (/\.(ts|mts|mjs|js)$/.test(name) && !name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

function nameOf(node, sf) {
  if (node.name && ts.isIdentifier(node.name)) return node.name.text;
  if (node.name) return node.name.getText(sf);
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  const p = node.parent;
  if (p && ts.isVariableDeclaration(p) && ts.isIdentifier(p.name)) return p.name.text;
  if (p && (ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p)) && p.name) return p.name.getText(sf);
  if (p && ts.isCallExpression(p)) return `<callback of ${p.expression.getText(sf).replace(/\s+/g, ' ').slice(0, 40)}>`;
  return '<anonymous>';
}

/** Every function-like node of `file` with more than `max` lines: { file, name, line, lines }. */
export function longFunctions(file, max) {
  const text = readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found = [];
  const visit = (node) => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = end - start + 1;
      if (lines > max) found.push({ file: path.relative(ROOT, file).split(path.sep).join('/'), name: nameOf(node, sf), line: start + 1, lines });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

/** Why `f` may be long, or undefined when it may not. */
export function allowance(f) {
  for (const [prefix, names] of Object.entries(ALLOWED)) {
    if (f.file === prefix || (prefix.endsWith('/') && f.file.startsWith(prefix))) return names[f.name] ?? names['*'];
  }
  return undefined;
}

/** All long functions of the scanned folders, each with its allowance (undefined: not allowed). */
export function scan(max = 100) {
  return SCANNED.flatMap((d) => sourceFiles(path.join(ROOT, d)))
    .flatMap((f) => longFunctions(f, max))
    .map((f) => ({ ...f, allowed: allowance(f) }));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const maxAt = args.indexOf('--max');
  const max = maxAt >= 0 ? Number(args[maxAt + 1]) : 100;
  const all = scan(max);
  const bad = all.filter((f) => !f.allowed);
  for (const f of args.includes('--all') ? all : bad) {
    console.log(`${f.file}:${f.line}  ${f.name}  ${f.lines} lines${f.allowed ? `  (allowed: ${f.allowed})` : ''}`);
  }
  console.log(`${bad.length} function${bad.length === 1 ? '' : 's'} over ${max} lines outside the allow-list (${all.length - bad.length} allowed)`);
  process.exit(bad.length > 0 ? 1 : 0);
}
