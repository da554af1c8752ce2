/** This user's task history on the node (`GET /realm/tasks`: only the caller's own) */
import { getJson } from '../lib/api.js'
import type { RealmEvent, TaskRecordResponse } from '../lib/types.js'

const RELOAD_DEBOUNCE_MS = 500

class HistoryStore {
  tasks = $state<TaskRecordResponse[]>([])
  error = $state<string | undefined>()
  private debounce?: ReturnType<typeof setTimeout>

  async load (): Promise<void> {
    try {
      this.tasks = (await getJson<{ tasks: TaskRecordResponse[] }>('/realm/tasks?limit=50')).tasks
      this.error = undefined
    } catch (err) {
      this.error = err instanceof Error ? err.message : String(err)
    }
  }

  /** The events socket's `tasks` topic carries only this user's own tasks */
  onEvent (event: RealmEvent): void {
    if (event.type !== 'task.done' && event.type !== 'task.error' && event.type !== 'task.submitted') return
    if (this.debounce !== undefined) clearTimeout(this.debounce)
    this.debounce = setTimeout(() => { void this.load() }, RELOAD_DEBOUNCE_MS)
  }
}

export const history = new HistoryStore()
