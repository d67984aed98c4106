// Usage errors (an unknown option, a missing argument, a value outside its choices): the error in one
// line and one line pointing at --help, instead of the whole help with the error last.

const COMMANDS = ['prep', 'parse', 'filter', 'ipsplit', 'labels', 'sanitize', 'split', 'shard', 'scale', 'inspect', 'train', 'eval', 'predict', 'report', 'synth', 'demo'];

/** What a command's positional argument is, for "missing argument" messages. */
const POSITIONALS: Record<string, string> = { prep: 'CSV files or folders', scale: 'a shard folder', inspect: 'a shard folder', report: 'a run folder' };

const dashed = (name: string) => (name.length === 1 ? `-${name}` : `--${name}`);

/** The two lines for a yargs validation message; argv is the command line as given. */
export function usageText(msg: string, argv: string[]): string {
  const cmd = COMMANDS.includes(argv[0]) ? argv[0] : '';
  let text = msg.trim();
  let m: RegExpMatchArray | null;
  if ((m = /^Unknown arguments?: (.*)$/s.exec(text))) {
    const names = m[1].split(', ').map((s) => s.trim());
    const said = names.map((n) => {
      if (argv.some((t) => t === dashed(n) || t.startsWith(`${dashed(n)}=`) || t === `--no-${n}`)) return `unknown option ${dashed(n)}`;
      if (!cmd && argv[0] === n) return `unknown command ${JSON.stringify(n)} (commands: ${COMMANDS.join(', ')})`;
      return `unexpected argument ${JSON.stringify(n)}`;
    });
    text = said.join('; ');
  } else if ((m = /^Missing required arguments?: (.*)$/s.exec(text))) {
    text = `missing ${m[1].split(', ').map((n) => dashed(n.trim())).join(', ')} (required)`;
  } else if ((m = /Argument: (\S+), Given: (.*?), Choices: (.*)$/s.exec(text))) {
    text = `${dashed(m[1])} ${m[2]}: choose one of ${m[3].replace(/"/g, '').trim()}`;
  } else if (/^Not enough non-option arguments/.test(text)) {
    text = `missing ${POSITIONALS[cmd] ?? 'argument'}`;
  } else if (/^Too many non-option arguments/.test(text)) {
    text = `too many arguments`;
  }
  const help = cmd ? `flowtensor ${cmd} --help` : 'flowtensor --help';
  return `flowtensor: ${cmd && !text.startsWith('unknown command') ? `${cmd}: ` : ''}${text}\n  hint: ${help} lists the ${cmd ? 'options' : 'commands'}`;
}
