/** Broadcasts from the node's sysop, shown in every UI (always as text) */
import type { RealmEvent } from '../lib/types.js'

export interface Broadcast {
  id: number
  message: string
  time: string
}

/** Broadcasts kept on screen at once (the oldest goes) */
const MAX_BROADCASTS = 5
/** Longest broadcast shown */
const MAX_BROADCAST_CHARS = 2000

class NoticesStore {
  broadcasts = $state<Broadcast[]>([])
  private next = 1

  onEvent (event: RealmEvent): void {
    if (event.type !== 'sysop.broadcast' && event.type !== 'broadcast') return
    const message = typeof event.message === 'string' ? event.message.slice(0, MAX_BROADCAST_CHARS) : ''
    if (message.trim() === '') return
    this.broadcasts = [...this.broadcasts, { id: this.next++, message, time: event.time }].slice(-MAX_BROADCASTS)
  }

  dismiss (id: number): void {
    this.broadcasts = this.broadcasts.filter(b => b.id !== id)
  }
}

export const notices = new NoticesStore()
