// fewshot from your own code, small and fast: meta-train ProtoNet on mini-ImageNet at 32 px for 100 episodes,
// then score it on the first 100 committed test episodes, printing progress as it goes.
// An .mjs file, so it runs as an ES module in any project (`npm init -y` writes "type": "commonjs").
//
//   node node_modules/fewshot/examples/quick-start.mjs <your mini-ImageNet folder>
//
// The first call decodes the images once into ./.cache/mini-imagenet-32 (about a minute); later calls reuse it.
// Flags (all optional) make it smaller still, e.g. for a few classes of your own in the same layout:
//   --way 5 --shot 1 --query 15 --image-size 32 --episodes 100 --test-episodes 100
//   --val-file FILE --test-file FILE (episode files from `fewshot episodes make`) --cache DIR --backend auto
import { parseArgs } from 'node:util';
import { runExperiment, UserError } from 'fewshot';

const { values: flag, positionals } = parseArgs({
  allowPositionals: true,
  options: Object.fromEntries(
    ['way', 'shot', 'query', 'image-size', 'episodes', 'test-episodes', 'val-file', 'test-file', 'cache', 'backend', 'results'].map((k) => [
      k,
      { type: 'string' },
    ]),
  ),
});
const number = (name, fallback) => (flag[name] === undefined ? fallback : Number(flag[name]));
const data = positionals[0] ?? process.env.FEWSHOT_DATA;
if (!data) {
  console.error('usage: node quick-start.mjs <mini-ImageNet folder> [--way N --shot K ...]  (or set $FEWSHOT_DATA)');
  process.exit(2);
}

const episodes = number('episodes', 100);
const task = { way: number('way', 5), shot: number('shot', 1), query: number('query', 15) };
const config = {
  method: 'protonet',
  backbone: 'conv4',
  imageSize: number('image-size', 32),
  train: { ...task, query: Math.min(task.query, 6) },
  test: task,
  episodes,
  optimizer: { type: 'adam', lr: 0.001 },
  validation: { every: episodes, episodes: 20 },
  seed: 0,
};

// The experiment layer never prints: it tells a reporter what it does. This one writes a line per status
// message and a progress line per tenth of each phase (decoding, training, evaluation) to stderr.
const reporter = {
  log: (line) => console.error(line),
  progress: (label, total) => {
    const started = Date.now();
    let shown = -1;
    return {
      update: (done, info = {}) => {
        const tenth = Math.floor((10 * done) / total);
        if (tenth === shown) return;
        shown = tenth;
        const extra = Object.entries(info)
          .map(([k, v]) => ` ${k} ${v}`)
          .join('');
        console.error(`${label}: ${done}/${total} (${((Date.now() - started) / 1000).toFixed(1)} s)${extra}`);
      },
      stop: () => {},
    };
  },
};

try {
  const out = await runExperiment(
    config,
    {
      data,
      testEpisodes: number('test-episodes', 100),
      valFile: flag['val-file'],
      testFile: flag['test-file'],
      cache: flag.cache,
      backend: flag.backend ?? 'auto',
      results: flag.results ?? 'results-local',
      runs: 'runs',
      logEvery: 10, // a progress line every 10 training episodes (the CLI's default is 100)
    },
    { reporter },
  );
  const acc = out.record.summary.plain;
  console.log(`ProtoNet ${task.way}-way ${task.shot}-shot after ${episodes} training episodes: ${acc.text} % (95% CI, ${acc.n} test episodes)`);
  console.log(`result: ${out.resultDir}/result.json`);
} catch (err) {
  // Bad input (a missing folder, a wrong layout) is a UserError that says what is wrong and how to fix it.
  if (!(err instanceof UserError)) throw err;
  console.error(`error: ${err.problem}\n  fix: ${err.fix}`);
  process.exit(2);
}
