import type { Command } from 'commander';
import path from 'node:path';
import { loadPlugins } from '../context.ts';
import { pluginOption } from '../options.ts';

/**
 * `fewshot predict <checkpoint> --support <class folders> --query <images…>`: classify your own images
 * with a trained checkpoint (library: experiment/predict.ts). Text or `--json` on stdout, messages on stderr.
 */
export function registerPredictCommand(program: Command): void {
  program
    .command('predict <checkpoint>')
    .description("few-shot classification of your own images: fit the checkpoint's method on --support, classify --query")
    .requiredOption('--support <folder>', 'a folder with one sub-folder of example images per class (≥ 2 classes)')
    .requiredOption('--query <paths...>', 'image files and/or folders of images to classify')
    .option('--mode <mode>', "inference mode whose scores are reported (default: the method's headline mode, e.g. ag for SLA)")
    .option('--backend <name>', 'compute backend', 'auto')
    .option('--json', 'print the predictions as JSON')
    .addOption(pluginOption('modules that register the heads/backbones the checkpoint was trained with (repeat the flag for more)'))
    .action(async (checkpoint: string, flags: { support: string; query: string[]; mode?: string; backend: string; json?: boolean; plugin?: string[] }) => {
      await loadPlugins(flags.plugin);
      // Loaded here, not at the top: flag parsing and --help load no tfjs (see main.ts).
      const [{ predictImages }, { stderrReporter }] = await Promise.all([import('../../experiment/predict.ts'), import('../reporter.ts')]);
      const result = await predictImages({
        checkpoint,
        support: flags.support,
        query: flags.query,
        mode: flags.mode,
        backend: flags.backend,
        reporter: stderrReporter,
      });
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ format: 'fewshot-predictions/1', ...result }, null, 2)}\n`);
        return;
      }
      const width = Math.max(...result.predictions.map((p) => path.basename(p.file).length));
      const classWidth = Math.max(...result.classes.map((c) => c.length));
      process.stdout.write(
        `${result.method} [${result.mode}], ${result.classes.length} classes (${result.classes.map((c, k) => `${c}: ${result.shots[k]}`).join(', ')} support images)\n`,
      );
      for (const p of result.predictions) {
        const probs = result.classes.map((c) => `${c} ${p.probabilities[c].toFixed(3)}`).join('  ');
        process.stdout.write(`${path.basename(p.file).padEnd(width)}  → ${p.predicted.padEnd(classWidth)} ${probs}\n`);
      }
    });
}
