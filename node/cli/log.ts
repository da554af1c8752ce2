/** `realm log`: the trace log, across rotated files, optionally followed */
import path from 'node:path'
import { TRACE_DIR_NAME, readTrace } from '../trace/index.js'
import { CliError } from './errors.js'
import type { RealmEvent } from '../events/index.js'

const SHOWN_FIELD_CHARS = 120

function human (event: RealmEvent): string {
  const { type, time, ...fields } = event
  const parts = Object.entries(fields).map(([k, v]) => {
    const text = typeof v === 'string' ? v : JSON.stringify(v)
    return `${k}=${text.length > SHOWN_FIELD_CHARS ? text.slice(0, SHOWN_FIELD_CHARS) + '…' : text}`
  })
  return `${time} ${type}${parts.length > 0 ? ' ' + parts.join(' ') : ''}`
}

export async function logCommand (values: { follow?: boolean, since?: string, json?: boolean }, dataDir: string): Promise<number> {
  let since: Date | undefined
  if (values.since != null) {
    since = new Date(values.since)
    if (Number.isNaN(since.getTime())) throw new CliError('INVALID_FLAG', `--since "${values.since.slice(0, 40)}": expected an ISO-8601 time`, 2)
  }
  const controller = new AbortController()
  const stop = (): void => { controller.abort() }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  try {
    for await (const event of readTrace(path.join(dataDir, TRACE_DIR_NAME), { since, follow: values.follow === true, signal: controller.signal })) {
      const ok = process.stdout.write((values.json === true ? JSON.stringify(event) : human(event)) + '\n')
      if (!ok) await new Promise(resolve => process.stdout.once('drain', resolve))
    }
  } catch (err: any) {
    if (err?.name !== 'AbortError') throw err
  } finally {
    process.off('SIGINT', stop)
    process.off('SIGTERM', stop)
  }
  return 0
}
