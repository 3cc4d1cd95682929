/*
 * Defaults the CLI shows in its help; this module imports nothing, so `--help` loads no tfjs or data code.
 */

/**
 * Where `run` and `eval` write results unless told otherwise. A checkout's `results/` holds the project's
 * committed reference results (written by `reproduce`, and by hand on purpose), so a user's runs go to a folder
 * of their own, ignored by git, and never replace a reference number (see `refuseCommittedResult`).
 */
export const DEFAULT_RESULTS = 'results-local';

/** Where `reproduce` keeps its cells and tables: the committed reference results of a checkout. */
export const REFERENCE_RESULTS = 'results';
