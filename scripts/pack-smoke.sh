#!/usr/bin/env bash
# Pack smoke test: the installed package works without the repository.
# npm pack (prepack builds dist/), install the tarball into a fresh temporary project (offline from the npm
# cache that `npm ci` filled), then from there: `npx fewshot --help`, `npx fewshot list --plugin` with a plugin
# file that imports from 'fewshot', `reproduce` of a shipped table (--dry-run), the shipped plugins, and
# few-episode trainings (a user's plugin head, a shipped plugin, the examples/quick-start.mjs programmatic
# example) on a 7-class fixture cut from the real mini-ImageNet val images (the same fixture the CLI tests use).
# Prints one "PASS/FAIL <step>" line per step and exits non-zero if any failed. Each step is time-bounded.
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/fewshot-pack-smoke-XXXXXX")"
fixture_root=""
cleanup() { rm -rf "$tmp"; [ -n "$fixture_root" ] && rm -rf "$fixture_root"; }
trap cleanup EXIT
failed=0
step() { # step NAME SECONDS CMD...
  local name="$1" secs="$2"; shift 2
  local t0=$SECONDS
  if timeout "$secs" "$@" >"$tmp/step.log" 2>&1; then echo "PASS $name ($((SECONDS - t0)) s)"; else
    echo "FAIL $name ($((SECONDS - t0)) s):"; tail -n 15 "$tmp/step.log" | sed 's/^/    /'; failed=1; fi
}

cd "$repo" || exit 1
step "npm pack" 600 npm pack --silent --pack-destination "$tmp"
tarball="$(ls "$tmp"/fewshot-*.tgz 2>/dev/null | head -n 1)"
[ -n "$tarball" ] || { echo "FAIL no tarball"; exit 1; }
echo "tarball: $(basename "$tarball"), $(du -k "$tarball" | cut -f1) kB, $(tar tzf "$tarball" | wc -l) files"
if tar tzf "$tarball" | grep -qE '^package/(test|bench|results|\.ci|src)/'; then echo "FAIL tarball carries test/bench/results/.ci/src"; failed=1; fi
# What the README and `data check` point a package user to (issue 32 #2, #3): the docs, the tables, the plugins, the example.
tar tzf "$tarball" > "$tmp/tarball-files.txt"  # listed once: `tar | grep -q` fails under pipefail when grep stops early
for f in docs/datasets.md docs/install.md experiments/tables/sla-fewshot.json plugins/maml/index.ts examples/quick-start.mjs; do
  grep -qx "package/$f" "$tmp/tarball-files.txt" || { echo "FAIL tarball lacks $f"; failed=1; }
done

mkdir -p "$tmp/consumer" && cd "$tmp/consumer" || exit 1
npm init -y >/dev/null
# The user's project is a git repository of its own: its commit must not be taken for fewshot's.
git init -q . 2>/dev/null && git -c user.email=a@b -c user.name=smoke commit -q --allow-empty -m init 2>/dev/null
step "npm install tarball" 600 npm install --prefer-offline --no-audit --no-fund "$tarball"
cat > plugin.mjs <<'JS'
// A user's plugin: a cosine head, importing only the public API of the installed package.
import { registerHead, tf, z, classMeans } from 'fewshot';
registerHead({
  id: 'smoke-cosine',
  apiVersion: '1.0',
  description: 'cosine similarity to class means (pack smoke test)',
  configSchema: z.object({}).strict(),
  create: () => ({
    id: 'smoke-cosine',
    variables: () => [],
    logits: (ep) => tf.tidy(() => {
      const unit = (x) => tf.div(x, tf.add(tf.norm(x, 'euclidean', 1, true), 1e-8));
      return tf.mul(tf.matMul(unit(ep.query), unit(classMeans(ep.support, ep.supportLabels, ep.way)), false, true), 10);
    }),
  }),
});
JS
step "npx fewshot --help" 120 npx fewshot --help
# A consumer's TypeScript type check against the installed declarations (no skipLibCheck): every type the
# public entry names must resolve from the package's own dependencies (a dev-only @types package would fail
# here with TS7016).
cat > consumer.ts <<'TS'
import { registerHead, tf, z, classMeans, meanCI, pairedDifference, runExperiment, validateConfig, type FewShotHead } from 'fewshot';
const ci: { mean: number; ci95: number } = meanCI([0.5, 0.6, 0.7]);
const diff = pairedDifference([0.5, 0.6], [0.4, 0.6]);
registerHead({
  id: 'typed-cosine', apiVersion: '1.0', description: 'typed consumer head', configSchema: z.object({}).strict(),
  create: (): FewShotHead => ({
    id: 'typed-cosine', variables: () => [],
    logits: (ep) => tf.tidy(() => tf.matMul(ep.query, classMeans(ep.support, ep.supportLabels, ep.way), false, true)),
  }),
});
// The chained tensor methods registered at run time are in the re-exported tf's types too (issue 32 #10).
const floats: tf.Tensor = tf.tensor1d([1, 2], 'int32').toFloat().mul(2);
const run: (typeof runExperiment) | undefined = validateConfig({ method: 'protonet' }) ? runExperiment : undefined;
console.log(ci.mean, diff, typeof run, floats.dtype);
TS
cat > tsconfig.json <<'JSON'
{ "compilerOptions": { "target": "es2022", "module": "nodenext", "moduleResolution": "nodenext", "strict": true, "noEmit": true }, "files": ["consumer.ts"] }
JSON
step "consumer type check (tsc, strict, no skipLibCheck)" 300 "$repo/node_modules/.bin/tsc" -p tsconfig.json
step "npx fewshot list --plugin ./plugin.mjs" 120 bash -c 'npx fewshot list --plugin ./plugin.mjs | grep -q "smoke-cosine-sla"'
step "npx fewshot --version" 60 bash -c 'npx fewshot --version | grep -q "^fewshot [0-9].* (plugin API "'
# The installed package finds its own committed episode files, whatever the working directory: the default
# test file of mini-ImageNet 5-way 1-shot resolves into node_modules/fewshot/episodes/ and exists there.
cat > episodes-check.mjs <<'JS'
import { existsSync } from 'node:fs';
import { defaultEpisodeFile, getDatasetProvider } from 'fewshot';
const { file } = defaultEpisodeFile({ dataset: { name: 'mini-imagenet', provider: getDatasetProvider('mini-imagenet'), options: {} } }, 'test', { way: 5, shot: 1, query: 15 });
if (!file.includes('node_modules/fewshot/episodes/mini-imagenet/') || !existsSync(file)) { console.error(`not the packaged file: ${file}`); process.exit(1); }
console.log(file);
JS
step "installed package resolves its committed episode files" 60 node episodes-check.mjs

# What the package ships besides the library (issue 32 #2): the paper tables `reproduce` fills (listed, and a
# dry run that plans every run of a table), and the plugins of plugins/ as files a user passes to --plugin.
step "npx fewshot reproduce lists the shipped tables" 60 bash -c 'npx fewshot reproduce | grep -q "^tables: .*sla-fewshot"'
step "npx fewshot reproduce sla-fewshot --dry-run" 180 bash -c 'npx fewshot reproduce sla-fewshot --dry-run --backend wasm > dry-run.txt && grep -qE "^protonet-sla_5w1s_cpu_5520a45b/seed0 .* (to run|cannot start: no mini-imagenet data given)" dry-run.txt'
for plugin in maml matchingnet relationnet; do
  step "npx fewshot list --plugin ./node_modules/fewshot/plugins/$plugin/index.ts" 120 bash -c "npx fewshot list --plugin ./node_modules/fewshot/plugins/$plugin/index.ts | grep -q '\\[plugin .*plugins/$plugin/index.ts\\]'"
done

# A tiny real-image dataset, built with the repository's test fixture (needs the shared mini-ImageNet val images).
fixture_dir="$(cd "$repo" && timeout 300 node --import tsx -e "const m = await import('./test/fixtures/mini-imagenet.ts'); const f = await m.buildFixture(12); console.log(f.root + '\t' + f.folderDir);" 2>/dev/null | tail -n 1)"
if [ -z "$fixture_dir" ]; then echo "SKIP training (no mini-ImageNet fixture: shared val images not found)"; else
  fixture_root="${fixture_dir%%$'\t'*}"; data="${fixture_dir#*$'\t'}"
  common=(--image-size 16 --cache "$tmp/cache")
  step "fewshot data prepare" 300 npx fewshot data prepare --data "$data" "${common[@]}"
  step "fewshot episodes make" 120 bash -c "npx fewshot episodes make --split val --way 2 --shot 1 --query 3 --count 4 --seed 0 --image-size 16 --cache '$tmp/cache' --out val.json && npx fewshot episodes make --split test --way 2 --shot 1 --query 3 --count 4 --seed 0 --image-size 16 --cache '$tmp/cache' --out test.json"
  step "fewshot run smoke-cosine-sla --plugin (3 episodes)" 300 npx fewshot run smoke-cosine-sla --plugin ./plugin.mjs --way 2 --shot 1 --query 3 --episodes 3 --val-every 2 --val-episodes 2 \
    --val-file val.json --test-file test.json --backend wasm --runs runs --results results "${common[@]}"
  step "fewshot run matchingnet --plugin ./node_modules/fewshot/plugins/matchingnet/index.ts (3 episodes)" 300 npx fewshot run matchingnet --plugin ./node_modules/fewshot/plugins/matchingnet/index.ts \
    --way 2 --shot 1 --query 3 --episodes 3 --val-every 3 --val-episodes 2 --val-file val.json --test-file test.json --backend wasm "${common[@]}"
  # The README's programmatic example, run from the package in this fresh ("type": "commonjs") project, with
  # progress and under a minute (issue 32 #4).
  step "node node_modules/fewshot/examples/quick-start.mjs (under 60 s)" 60 bash -c "node node_modules/fewshot/examples/quick-start.mjs '$data' --way 2 --query 3 --image-size 16 --episodes 20 --val-file val.json --test-file test.json --cache '$tmp/cache' --backend wasm > quick-start.out 2> quick-start.err && grep -q '^ProtoNet 2-way 1-shot after 20 training episodes: .* % (95% CI, 4 test episodes)' quick-start.out && grep -q '^train: 20/20' quick-start.err"
  # The one-file dataset plugin shipped in examples/ (it imports only 'fewshot') prepares a real folder from the
  # installed package: the fixture's JPEGs renamed to its <class>_<n>.jpg layout.
  mkdir -p pets && for f in "$data"/images/*.jpg; do b="$(basename "$f")"; cp "$f" "pets/${b:0:9}_${b:9}"; done
  step "fewshot data prepare --plugin ./node_modules/fewshot/examples/named-files-dataset.ts" 300 bash -c "npx fewshot data prepare --plugin ./node_modules/fewshot/examples/named-files-dataset.ts --dataset named-files --data pets --image-size 16 --cache '$tmp/cache-pets' && grep -q '\"id\": \"named-files\"' '$tmp/cache-pets/manifest.json'"
  # A result written by the installed package says which package and commit made it (not "unknown", and not
  # the commit of a git repository the user's project happens to be in).
  expected_commit="$(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  step "result records the package and its build commit" 30 bash -c "f=\$(find results -name result.json | head -n 1) && grep -q '\"source\": \"package\"' \"\$f\" && grep -q '\"commit\": \"$expected_commit' \"\$f\""
fi
exit $failed
