/**
 * The two ways Orch's node wrappers chain on the step they wrap, handed to one wrapper instead of two copies of it.
 * Runs recorded before LEAN_NODE_PATCH (session.ts) took the awaiting form, an async function and its await; later
 * runs take the then() form, which makes one promise less (the SDK's promise hook captures and source-maps a stack
 * for every promise a workflow makes). Both settle after the same number of microtask turns, but each keeps exactly
 * the form its runs were recorded with, down to what a synchronous throw does, so that a run replays unchanged.
 *
 * Deterministic workflow code: no I/O.
 */

/** How the runner chains a node's session call and the step after it (keeping its output). */
export interface StepChain {
  <T>(step: () => Promise<T>, next: (value: T) => void): Promise<void>;
}

/** An async function awaiting the step: a synchronous throw in step() rejects the returned promise. */
export const awaitStep: StepChain = async (step, next) => next(await step());

/** step().then(next): a synchronous throw in step() is thrown to the caller, as the lean path always did. */
export const thenStep: StepChain = (step, next) => step().then(next);

/**
 * How the session chains a node's body between taking the node (start) and recording its failure (failed: what
 * to throw for an error of the body). An error of start() rejects as it is.
 */
export interface TrackChain {
  <T>(start: () => void, body: () => Promise<T>, failed: (err: unknown) => unknown): Promise<T>;
}

/** An async function: start(), then `return await body()` in a try. */
export const awaitTrack: TrackChain = async (start, body, failed) => {
  start();
  try {
    return await body();
  } catch (err) {
    throw failed(err);
  }
};

/** body().then(undefined, ...): one promise where the async form makes two (the function's and its await's). */
export const thenTrack: TrackChain = <T>(start: () => void, body: () => Promise<T>, failed: (err: unknown) => unknown): Promise<T> => {
  try {
    start();
  } catch (err) {
    return Promise.reject(err);
  }
  let running: Promise<T>;
  try {
    running = body();
  } catch (err) {
    return Promise.reject(failed(err));
  }
  return running.then(undefined, (err: unknown) => {
    throw failed(err);
  });
};
