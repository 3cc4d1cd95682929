import path from 'node:path';
import { packageRoot } from '../../util/package-root.ts';

/*
 * reproduce's defaults, in a module that loads nothing else: the CLI reads them to write its --help without
 * loading BullMQ, tfjs or the table code.
 */

/** The queue name `reproduce --queue` and `worker` use by default. */
export const DEFAULT_QUEUE_NAME = 'fewshot-reproduce';

/** The committed tables (`experiments/tables/*.json`) of this package (a checkout's, or an installed package's). */
export const TABLES_DIR = path.join(packageRoot(), 'experiments', 'tables');

/**
 * The exit status of `reproduce --run` (a worker's or a side-by-side reproducer's child) when another process holds
 * the run's folder: EX_TEMPFAIL of sysexits.h ("try again later"). The parent records the run as in progress
 * elsewhere, not failed.
 */
export const RUN_IN_USE_EXIT_CODE = 75;
