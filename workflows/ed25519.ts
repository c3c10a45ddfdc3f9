/**
 * @noble's Ed25519 as workflow code uses it, with its table of base-point multiples set up once per workflow thread.
 *
 * Workflow code is evaluated anew for every run a worker loads (the SDK keeps module state per run), except the
 * modules the bundle preloads (WORKFLOW_PRELOAD_MODULES in desktop-worker/plugin.ts: this one, and with it @noble's
 * curves and hashes), which every run on that thread shares. Loaded per run, @noble built its table and ran cold at
 * each run's first verification: bench:parked --signed (N=1000), the approve update's workflow task up to the gate's
 * audit row took 22.5-24.5 ms that way and 15.0-18.6 ms shared. Shared, the first run on a thread builds the table
 * and the others verify warm (2-3 ms each).
 *
 * Safe to share: @noble keeps no per-call state besides this table, which changes how a multiplication is computed,
 * never its result. Nothing here may hold per-run state.
 */
import { ed25519 } from '@noble/curves/ed25519.js';

/**
 * The window of the base-point table (258 points for 2, 4,224 for @noble's default 8): built lazily, at the first
 * verification on the thread. Measured in one process, first verification with the table / each one after: window 2,
 * 10.9 / 3.0 ms; 4, 14.1 / 2.2 ms; 8, 41.2 / 2.4 ms.
 */
export const BASE_WINDOW = 4;
ed25519.Point.BASE.precompute(BASE_WINDOW);

export { ed25519 };
