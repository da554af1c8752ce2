/** The events socket of this UI: public realm events and this user's own tasks, handed to the stores */
import { EventsClient, type ConnectionState } from '../lib/events-client.js'
import type { RealmEvent } from '../lib/types.js'
import { realm } from './realm.svelte.js'
import { notices } from './notices.svelte.js'
import { history } from './history.svelte.js'
import { user } from './user.svelte.js'

/** Close code of a banned user's socket (node/gateway/events-ws.ts) */
const WS_CLOSE_BANNED = 4003

class ConnectionStore {
  state = $state<ConnectionState>('connecting')
  private client?: EventsClient

  start (): void {
    this.client ??= new EventsClient({
      topics: ['presence', 'peers', 'tasks'],
      finalCodes: [WS_CLOSE_BANNED],
      onEvent: (event: RealmEvent) => {
        realm.onEvent(event)
        notices.onEvent(event)
        history.onEvent(event)
      },
      onState: (state, detail) => {
        this.state = state
        if (detail?.code === WS_CLOSE_BANNED) user.banned = true
      }
    })
    this.client.start()
  }
}

export const connection = new ConnectionStore()
