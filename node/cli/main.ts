/**
 * `realm`: start a node, and read-only commands that talk to the running node through
 * `DIR/node.json` and its HTTP API. Output for people by default, `--json` for scripts.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { CONFIG_ENV_VARS, resolveDataDir } from '../config/index.js'
import { errorMessage, isRealmError } from '../../protocol/errors.js'
import { REALM_VERSION } from '../../protocol/ids.js'
import { CliError } from './errors.js'
import type { StartValues } from './start.js'
import { statusCommand, peersCommand, modelsCommand } from './read.js'
import { logCommand } from './log.js'
import { blockCommand, blocklistCommand, sysopCommand, unblockCommand } from './sysop.js'

export { CliError }

// loaded only for `realm start`: it brings the whole node (libp2p, LevelDB, …), which would make
// every read command take seconds to start
async function startCommand (values: StartValues, dataDir: string): Promise<number> {
  const { startCommand } = await import('./start.js')
  return await startCommand(values, dataDir)
}

const USAGE = `realm ${REALM_VERSION}: a RentAHal realm node (peer-to-peer AI compute)

Usage:
  realm start [options]        run a node (gateway + web UI + libp2p peer)
  realm status [--json]        the running node: peer id, addresses, peers, workers
  realm peers [--json]         peers in the live table with their workers and health
  realm models [--json]        every model in the mesh and which peers serve it
  realm log [--follow] [--since TIME] [--json]
                               the trace log (every event), across rotated files
  realm block PEER|CIDR [--reason R] [--for DURATION] [--json]
                               block a peer or address range at every layer
                               (DURATION: 30m, 2h, 7d; default: until unblocked)
  realm unblock PEER|CIDR [--json]
                               lift a block (a followed publisher's: a local override)
  realm blocklist [--json] [--publish]
                               the blocklist; --publish shares this node's entries
  realm sysop rotate-token [--json]
                               a new sysop token (the running node takes it at once)
  realm help | --help          this text;  realm --version

Every command takes --data DIR (env REALM_DATA, default ~/.rentahal).

realm start options (precedence: flag > environment > DIR/config.toml > default):
  --http HOST:PORT             gateway address (default 127.0.0.1:5000; port 0 picks one)
  --listen MULTIADDR           libp2p listen address, repeatable
                               (default /ip4/0.0.0.0/tcp/9000 and /ip4/0.0.0.0/tcp/9001/ws)
  --bootstrap MULTIADDR        a node to join (…/p2p/<peerId>), repeatable
  --worker BACKEND=TARGET      attach a backend, repeatable: ollama=http://127.0.0.1:11434,
                               openai=http://127.0.0.1:8080, sd=http://127.0.0.1:7860
  --no-detect                  do not look for backends on their usual local ports
  --no-mdns                    no LAN discovery
  --tls-cert FILE              serve the gateway over HTTPS with this PEM certificate (chain)
                               (env REALM_TLS_CERT, config http.tls_cert)
  --tls-key FILE               the certificate's PEM private key, unencrypted
                               (env REALM_TLS_KEY, config http.tls_key)

Environment:
${CONFIG_ENV_VARS.map(v => `  ${v.name.padEnd(28)} ${v.description}`).join('\n')}
`

const COMMON = {
  data: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' }
} as const

const COMMANDS: Record<string, { options: ParseArgsConfig['options'], positionals?: boolean, run: (values: any, dataDir: string) => Promise<number> }> = {
  start: {
    options: {
      ...COMMON,
      http: { type: 'string' },
      listen: { type: 'string', multiple: true },
      bootstrap: { type: 'string', multiple: true },
      worker: { type: 'string', multiple: true },
      'no-detect': { type: 'boolean' },
      'no-mdns': { type: 'boolean' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' }
    },
    run: startCommand
  },
  status: { options: COMMON, run: statusCommand },
  peers: { options: COMMON, run: peersCommand },
  models: { options: COMMON, run: modelsCommand },
  log: {
    options: { ...COMMON, follow: { type: 'boolean', short: 'f' }, since: { type: 'string' } },
    run: logCommand
  },
  block: {
    options: { ...COMMON, reason: { type: 'string' }, for: { type: 'string' } },
    positionals: true,
    run: blockCommand
  },
  unblock: { options: COMMON, positionals: true, run: unblockCommand },
  blocklist: { options: { ...COMMON, publish: { type: 'boolean' } }, run: blocklistCommand },
  sysop: { options: COMMON, positionals: true, run: sysopCommand }
}

/** Run the CLI; resolves to the exit code */
export async function main (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  if (command == null || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE)
    return command == null ? 2 : 0
  }
  if (command === '--version' || command === 'version') {
    process.stdout.write(`${REALM_VERSION}\n`)
    return 0
  }
  const spec = COMMANDS[command]
  if (spec == null) {
    process.stderr.write(`realm: unknown command "${command.slice(0, 40)}" (try realm --help)\n`)
    return 2
  }
  let values: Record<string, any>
  try {
    const parsed = parseArgs({ args: rest, options: spec.options, strict: true, allowPositionals: spec.positionals === true })
    values = spec.positionals === true ? { ...parsed.values, _: parsed.positionals } : parsed.values
  } catch (err) {
    process.stderr.write(`realm ${command}: ${oneLine(errorMessage(err))}\n`)
    return 2
  }
  if (values.help === true) {
    process.stdout.write(USAGE)
    return 0
  }
  try {
    const dataDir = resolveDataDir({ flag: values.data, env: process.env })
    return await spec.run(values, dataDir)
  } catch (err) {
    if (err instanceof CliError || isRealmError(err)) {
      process.stderr.write(`realm ${command}: ${oneLine(errorMessage(err))}\n`)
      return err instanceof CliError ? err.exitCode : 1
    }
    process.stderr.write(`realm ${command}: ${oneLine(errorMessage(err))}\n`)
    return 1
  }
}

function oneLine (s: string): string {
  return s.replace(/\s*\n\s*/g, '; ')
}
