/*
 * Where results go by default (the CLI shows them in its help). This module imports nothing, so `--help` loads no
 * tfjs, data or experiment code (test/cli-ux.slow.test.ts checks that); it sits in util so the CLI and the experiment
 * layer both read it from below.
 */

/**
 * Where `run` and `eval` write results unless told otherwise. A checkout's `results/` holds the project's
 * committed reference results (written by `reproduce`, and by hand on purpose), so a user's runs go to a folder
 * of their own, ignored by git, and never replace a reference number (see `refuseCommittedResult`).
 */
export const DEFAULT_RESULTS = 'results-local';

/** Where `reproduce` keeps its cells and tables: the committed reference results of a checkout. */
export const REFERENCE_RESULTS = 'results';
