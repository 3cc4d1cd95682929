import type { CommanderError } from 'commander';

/** The command words of an argv (`fewshot episodes make --way 5` → "episodes make"), for the help hint. */
function commandWords(argv: string[], groups: readonly string[]): string {
  const [first, second] = argv;
  if (!first || first.startsWith('-')) return '';
  return groups.includes(first) && second && !second.startsWith('-') ? `${first} ${second}` : first;
}

/** The `fix:` line for one of commander's usage errors. */
/** `groups`: the commands that have subcommands (`data`, `episodes`). */
export function usageErrorFix(err: CommanderError, argv: string[], groups: readonly string[] = []): string {
  const words = commandWords(argv, groups);
  const help = `\`fewshot ${words ? `${words} ` : ''}--help\``;
  switch (err.code) {
    case 'commander.unknownOption':
      return `remove or correct the option; ${help} lists the options`;
    case 'commander.unknownCommand':
      return 'use one of the commands `fewshot --help` lists';
    case 'commander.missingArgument':
      return `give the missing argument; ${help} shows the usage`;
    case 'commander.optionMissingArgument':
      return `give the option a value; ${help} shows what it takes`;
    case 'commander.missingMandatoryOptionValue':
      return `add the required option; ${help} shows the usage`;
    case 'commander.invalidArgument':
      return /Allowed choices are/.test(err.message) ? 'use one of the allowed choices above' : `pass a valid value; ${help} shows what each option takes`;
    case 'commander.excessArguments':
      return `remove the extra arguments; ${help} shows the usage`;
    default:
      return `${help} shows the usage`;
  }
}
