/**
 * Prints the path of the pinned Temporal CLI, building or downloading it first if needed.
 * CI runs it to warm the cache; operators can run it to see where the CLI comes from.
 *
 *   npx tsx infra/get-temporal-cli.ts [--no-build] [--no-download] [--verbose]
 *
 * stdout holds only the path, so `TEMPORAL=$(npx tsx infra/get-temporal-cli.ts)` works; progress and
 * errors go to stderr. Exit code 0 on success, 1 when no CLI could be had, 2 on a bad argument.
 */
import { resolveTemporalCli, TemporalCliError } from './temporal-cli';

const USAGE = 'usage: npx tsx infra/get-temporal-cli.ts [--no-build] [--no-download] [--verbose]';

async function main(argv: string[]): Promise<number> {
  const flags = new Set(argv);
  for (const flag of flags) {
    if (!['--no-build', '--no-download', '--verbose', '--help'].includes(flag)) {
      process.stderr.write(`unknown argument ${flag}\n${USAGE}\n`);
      return 2;
    }
  }
  if (flags.has('--help')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  try {
    const cli = await resolveTemporalCli({
      allowBuild: !flags.has('--no-build'),
      allowDownload: !flags.has('--no-download'),
      log: (line) => process.stderr.write(`${line}\n`),
    });
    if (flags.has('--verbose')) process.stderr.write(`temporal ${cli.version}, from ${cli.source}\n`);
    process.stdout.write(`${cli.path}\n`);
    return 0;
  } catch (err) {
    if (err instanceof TemporalCliError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

process.exitCode = await main(process.argv.slice(2));
