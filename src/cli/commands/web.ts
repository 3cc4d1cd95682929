import type { Command } from 'commander';
import { intArg, pluginOption } from '../options.ts';
import { loadPlugins } from '../context.ts';

/**
 * `fewshot export <checkpoint>` (library: experiment/export.ts) and `fewshot serve` (experiment/serve.ts):
 * from a trained checkpoint to the browser page, where a few photos of new classes are classified on the
 * user's own machine. See docs/browser.md.
 */
export function registerWebCommands(program: Command): void {
  program
    .command('export <checkpoint>')
    .description('write a checkpoint in the form the browser page loads (tfjs model.json + weight shards, method config, provenance)')
    .option('--out <folder>', 'output folder (default: <checkpoint>-web, e.g. runs/<name>/best-web)')
    .option('--results <folder>', "where the run's result.json (its training command) is looked up", 'results')
    .addOption(
      pluginOption('modules that register the heads/backbones the checkpoint was trained with, to name them in the refusal (repeat the flag for more)'),
    )
    .action(async (checkpoint: string, flags: { out?: string; results: string; plugin?: string[] }) => {
      await loadPlugins(flags.plugin);
      const [{ exportCheckpoint }, { stderrReporter }] = await Promise.all([import('../../experiment/export.ts'), import('../../experiment/front-end.ts')]);
      const result = await exportCheckpoint({ checkpoint, out: flags.out, results: flags.results, reporter: stderrReporter });
      process.stdout.write(`${result.out}\n`);
    });

  program
    .command('serve')
    .description('serve the browser page on this machine (loopback), with cross-origin isolation for wasm threads; prints its URL')
    .option('--model <folder>', 'an export folder (`fewshot export`); without it the page asks for one')
    .option('--port <n>', 'TCP port (0: any free port)', intArg('--port', 0), 8429)
    .option('--host <address>', 'address to listen on (default loopback only)', '127.0.0.1')
    .action(async (flags: { model?: string; port: number; host: string }) => {
      const [{ servePage }, { stderrReporter, untilStopped }] = await Promise.all([
        import('../../experiment/serve.ts'),
        import('../../experiment/front-end.ts'),
      ]);
      const served = await servePage({ model: flags.model, port: flags.port, host: flags.host, reporter: stderrReporter });
      process.stdout.write(`${served.url}\n`);
      process.stderr.write('open the URL in a browser; Ctrl-C stops the server\n');
      await untilStopped();
      await served.close();
    });
}
