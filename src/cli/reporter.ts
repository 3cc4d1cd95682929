/*
 * The CLI's reporter (status lines and progress bars on stderr) and the hooks of one command (that reporter and an
 * abort signal Ctrl-C raises; call `done()` when the command ends): the experiment layer's front-end pieces.
 */
import { interruptibleHooks, stderrReporter } from '../experiment/front-end.ts';

export { stderrReporter };
export const cliHooks = () => interruptibleHooks(stderrReporter);
