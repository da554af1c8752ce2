/**
 * The node's event bus. Everything that happens is a JSON event `{ type, time, ...fields }`:
 * the trace log appends every event, the `/realm/events` WebSocket streams them to clients.
 */

/** Event topics a WebSocket client subscribes to */
export type EventTopic = 'presence' | 'peers' | 'tasks' | 'system'

export interface RealmEvent {
  /** dotted name, e.g. `peer.join`, `presence.beacon`, `config.repaired` */
  type: string
  /** ISO-8601 time the event happened */
  time: string
  [field: string]: unknown
}

export type EventListener = (event: RealmEvent) => void

export interface EventBus {
  /** emit an event; `time` is filled in when absent. Returns the event as emitted */
  emit (type: string, fields?: Record<string, unknown>): RealmEvent
  /** listen to every event; returns a function that stops listening */
  subscribe (listener: EventListener): () => void
}

/** The topic an event type belongs to (its first dotted segment decides) */
export function topicOf (type: string): EventTopic {
  const head = type.split('.', 1)[0]
  if (head === 'presence') return 'presence'
  if (head === 'peer') return 'peers'
  if (head === 'task' || head === 'queue') return 'tasks'
  return 'system'
}

export function createEventBus (): EventBus {
  const listeners = new Set<EventListener>()
  return {
    emit (type, fields = {}) {
      const event: RealmEvent = { type, time: new Date().toISOString(), ...fields }
      if (typeof fields.time === 'string') event.time = fields.time
      for (const listener of [...listeners]) {
        try {
          listener(event)
        } catch {
          // a broken listener must not stop the others or the emitter
        }
      }
      return event
    },
    subscribe (listener) {
      listeners.add(listener)
      return () => { listeners.delete(listener) }
    }
  }
}
