/**
 * The sysop panel's state: signed in or not (a sessionStorage flag for this tab; the node's
 * HttpOnly session cookie is what counts), the blocklist, the users, the live console of the
 * node's events, and the tasks running now.
 */
import { ApiError } from '../lib/api.js'
import { CONSOLE_TOPICS, clearConsole, emptyConsole, pushEvent, setPaused, visibleEntries, type ConsoleFilter, type ConsoleState } from '../lib/console.js'
import { EventsClient, type ConnectionState } from '../lib/events-client.js'
import { SYSOP_FLAG_KEY, applyLiveTask, sysopApi, type BlockEntry, type LiveTask, type SysopUser } from '../lib/sysop.js'
import { load, save } from '../lib/storage.js'
import type { RealmEvent } from '../lib/types.js'

export interface Refusal {
  status: number
  code: string
  message: string
}

class SysopStore {
  authed = $state(load(SYSOP_FLAG_KEY, 'session') === '1')
  checking = $state(false)
  refusal = $state<Refusal | undefined>()
  error = $state<string | undefined>()
  notice = $state<string | undefined>()
  blocklist = $state.raw<BlockEntry[]>([])
  users = $state.raw<SysopUser[]>([])
  console = $state.raw<ConsoleState>(emptyConsole())
  filter = $state<ConsoleFilter>({ topics: [...CONSOLE_TOPICS], text: '' })
  visible = $derived(visibleEntries(this.console, this.filter))
  liveTasks = $state.raw<LiveTask[]>([])
  /** tasks started per peer since the panel opened */
  traffic = $state<Record<string, number>>({})
  socket = $state<ConnectionState>('closed')
  private client?: EventsClient

  /** The panel opened: check the session (a 401 is shown as the refusal) */
  async open (): Promise<void> {
    this.checking = true
    try {
      await this.loadAll()
      this.setAuthed(true)
    } catch (err) {
      this.handle(err, true)
    } finally {
      this.checking = false
    }
  }

  close (): void {
    this.client?.stop()
    this.client = undefined
  }

  async signIn (token: string): Promise<boolean> {
    this.error = undefined
    try {
      await sysopApi.signIn(token.trim())
      await this.loadAll()
      this.setAuthed(true)
      this.refusal = undefined
      return true
    } catch (err) {
      this.handle(err, true)
      return false
    }
  }

  signOut (): void {
    this.setAuthed(false)
    this.blocklist = []
    this.users = []
    this.notice = undefined
    void fetch('/realm/sysop/session', { method: 'DELETE' }).catch(() => {})
  }

  async loadAll (): Promise<void> {
    const [blocklist, users] = await Promise.all([sysopApi.blocklist(), sysopApi.users()])
    this.blocklist = blocklist
    this.users = users
  }

  async block (target: string, reason: string): Promise<boolean> {
    return await this.act(async () => { await sysopApi.block(target, reason) }, `Blocked ${target}.`, true)
  }

  async unblock (entry: string): Promise<boolean> {
    return await this.act(async () => { await sysopApi.unblock(entry) }, `Unblocked ${entry}.`, true)
  }

  async setBanned (id: string, banned: boolean): Promise<boolean> {
    return await this.act(async () => { await sysopApi.setBanned(id, banned) }, banned ? 'User banned: their sockets are closed and their tasks cancelled.' : 'User unbanned.', true)
  }

  async setBenched (workerId: string, benched: boolean): Promise<boolean> {
    return await this.act(async () => { await sysopApi.setBenched(workerId, benched) }, benched ? `Worker ${workerId} benched.` : `Worker ${workerId} back in service.`, false)
  }

  async broadcast (message: string): Promise<boolean> {
    return await this.act(async () => { await sysopApi.broadcast(message) }, 'Broadcast sent to every UI of this node.', false)
  }

  async cancelTask (id: string): Promise<boolean> {
    const ok = await this.act(async () => { await sysopApi.cancelTask(id) }, `Task ${id} cancelled.`, false)
    if (ok) this.liveTasks = this.liveTasks.filter(t => t.id !== id)
    return ok
  }

  setPaused (paused: boolean): void {
    this.console = setPaused(this.console, paused)
  }

  clear (): void {
    this.console = clearConsole(this.console)
  }

  private async act (fn: () => Promise<void>, done: string, reload: boolean): Promise<boolean> {
    this.error = undefined
    this.notice = undefined
    try {
      await fn()
      this.notice = done
      if (reload) await this.loadAll()
      return true
    } catch (err) {
      this.handle(err)
      return false
    }
  }

  private setAuthed (authed: boolean): void {
    this.authed = authed
    save(SYSOP_FLAG_KEY, authed ? '1' : null, 'session')
    if (authed) this.startConsole()
    else this.close()
  }

  /** 401 (no valid token or session) anywhere, or a missing route while signing in, closes the panel */
  private handle (err: unknown, signingIn = false): void {
    if (err instanceof ApiError && (err.status === 401 || (signingIn && err.status === 404))) {
      this.refusal = { status: err.status, code: err.code, message: err.message }
      this.setAuthed(false)
      return
    }
    this.error = err instanceof ApiError ? `${err.message} (${err.status} ${err.code})` : err instanceof Error ? err.message : String(err)
  }

  private startConsole (): void {
    if (this.client != null) return
    this.client = new EventsClient({
      topics: ['system', 'tasks', 'peers', 'presence'],
      onEvent: (event: RealmEvent) => { this.onEvent(event) },
      onState: (state) => { this.socket = state }
    })
    this.client.start()
  }

  private onEvent (event: RealmEvent): void {
    if (event.type === 'hello' || event.type === 'subscribed' || event.type === 'pong') return
    this.console = pushEvent(this.console, event)
    this.liveTasks = applyLiveTask(this.liveTasks, event)
    if (event.type === 'task.started' && typeof event.peerId === 'string') {
      this.traffic[event.peerId] = (this.traffic[event.peerId] ?? 0) + 1
    }
    // a new user, or a ban from another tab or the CLI
    if (event.type === 'user.created' || event.type === 'sysop.user_banned' || event.type === 'sysop.user_unbanned') void this.refreshUsers()
  }

  private async refreshUsers (): Promise<void> {
    try {
      this.users = await sysopApi.users()
    } catch {
      // shown on the next action
    }
  }
}

export const sysop = new SysopStore()
