/*
 * The defaults a command line shows in its --help, from modules that load no tfjs, data or table code (the CLI
 * imports this before parsing its flags).
 */
export { DEFAULT_DATASET } from '../data/providers/registry.ts';
export { DEFAULT_RESULTS } from '../util/result-folders.ts';
export { DEFAULT_QUEUE_NAME, TABLES_DIR, RUN_IN_USE_EXIT_CODE } from './reproduce/defaults.ts';
