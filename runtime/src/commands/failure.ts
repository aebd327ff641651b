/**
 * How every botshard entry point (the CLI, the server commands, `up`, `cdk8s synth`, `cdk synth`) turns
 * an error into what the user reads and an exit code, in one place.
 *
 * Exit codes: 2 when the command was called wrongly (a flag, an argument, a setting it could not start
 * with), 1 when it ran and failed (an invalid or unplaceable catalog, a port in use, a bug). Errors a
 * user can meet print their message only; anything else is a bug and prints its stack trace.
 * BOTSHARD_DEBUG=1 adds the stack to every message.
 */
import { CatalogError } from '../catalog/problems';
import { PlacementError } from '../placement/plan';

/** A mistake in how the command was called: usage is printed, exit code 2. */
export class UsageError extends Error {}

/** A flag or variable with a wrong value: the message says which and how to fix it. */
export class SettingsError extends Error {}

export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** An error a user can meet and fix from its message alone (no stack trace needed). */
export function isKnown(e: unknown): boolean {
  return (
    e instanceof CatalogError ||
    e instanceof PlacementError ||
    e instanceof SettingsError ||
    e instanceof UsageError ||
    (e as NodeJS.ErrnoException)?.code === 'EADDRINUSE'
  );
}

/** What the user reads: the message of a known error, the stack of anything else (a bug). */
export function explain(e: unknown, env: NodeJS.ProcessEnv = process.env): string {
  if (!(e instanceof Error)) return String(e);
  if (!isKnown(e)) return e.stack ?? e.message;
  return env.BOTSHARD_DEBUG ? `${e.message}\n${e.stack}` : e.message;
}

/**
 * The exit code of a failure. `stage` is "settings" while the command is still reading its flags and
 * variables (a known error there is a wrong call: 2), "run" once it has started doing its work.
 */
export function exitCodeOf(e: unknown, stage: 'settings' | 'run' = 'run'): number {
  if (e instanceof UsageError) return EXIT_USAGE;
  return stage === 'settings' && isKnown(e) ? EXIT_USAGE : EXIT_FAILED;
}

/** Prints `<prefix>: <explanation>` to stderr and exits with the failure's code. */
export function exitWithFailure(prefix: string, e: unknown, stage: 'settings' | 'run' = 'run'): never {
  process.stderr.write(`${prefix}: ${explain(e)}\n`);
  process.exit(exitCodeOf(e, stage));
}
