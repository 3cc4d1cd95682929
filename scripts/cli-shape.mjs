// The CLI's shape (issue 28): which modules below the experiment layer src/cli/** imports, and its longest
// function. `node scripts/cli-shape.mjs` prints both; test/cli-shape.test.ts holds the limits (the CLI parses,
// calls one experiment-layer function and prints: at most 2 modules below that layer, for option helpers, and no
// function of 50 lines or more).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function filesUnder(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return filesUnder(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [p] : [];
  });
}

/** Every module a source file imports: static imports, `export … from`, `import type`, and `import('…')`. */
function importsOf(source) {
  const out = [];
  const visit = (node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier))
      out.push(node.moduleSpecifier.text);
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0]))
      out.push(node.arguments[0].text);
    if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) out.push(node.argument.literal.text);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

/** Each function (declaration, expression, arrow, method) and its length in lines, first line to last. */
function functionsOf(source, file) {
  const out = [];
  const visit = (node) => {
    if (ts.isFunctionDeclaration(node) || ts.isFunctionExpression(node) || ts.isArrowFunction(node) || ts.isMethodDeclaration(node)) {
      const first = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const last = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      const name = node.name?.getText(source) ?? (ts.isVariableDeclaration(node.parent) ? node.parent.name.getText(source) : '(anonymous)');
      out.push({ file: path.relative(root, file), line: first + 1, name, lines: last - first + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

export function measureCli(cliDir = path.join(root, 'src', 'cli')) {
  const src = path.join(root, 'src');
  const below = new Map(); // module (relative to src/) → the CLI files importing it
  const functions = [];
  for (const file of filesUnder(cliDir)) {
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    for (const spec of importsOf(source)) {
      if (!spec.startsWith('.')) continue; // packages (commander, node:*) are not layers
      const target = path.relative(src, path.resolve(path.dirname(file), spec));
      if (target.startsWith(`cli${path.sep}`) || target.startsWith(`experiment${path.sep}`)) continue;
      if (!below.has(target)) below.set(target, new Set());
      below.get(target).add(path.relative(root, file));
    }
    functions.push(...functionsOf(source, file));
  }
  functions.sort((a, b) => b.lines - a.lines);
  return {
    belowExperiment: [...below].map(([module, files]) => ({ module, files: [...files].sort() })).sort((a, b) => a.module.localeCompare(b.module)),
    longestFunctions: functions.slice(0, 5),
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const m = measureCli();
  console.log(`modules below the experiment layer imported by src/cli: ${m.belowExperiment.length}`);
  for (const b of m.belowExperiment) console.log(`  ${b.module}  (${b.files.join(', ')})`);
  console.log('longest functions:');
  for (const f of m.longestFunctions) console.log(`  ${f.lines} lines  ${f.name}  ${f.file}:${f.line}`);
}
