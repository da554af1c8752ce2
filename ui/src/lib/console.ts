/**
 * The sysop's live console of the node's events: a bounded list, filters (topic, text) and
 * pause (events that arrive while paused wait, bounded too, and show on resume). Pure;
 * tested in test/unit/ui-views.test.ts.
 */
import type { RealmEvent } from './types.js'

/** Events the console keeps */
export const CONSOLE_MAX_EVENTS = 1000
/** Events held while paused */
export const CONSOLE_MAX_HELD = 5000

export type ConsoleTopic = 'presence' | 'peers' | 'tasks' | 'system'
export const CONSOLE_TOPICS: readonly ConsoleTopic[] = ['system', 'tasks', 'peers', 'presence']

export interface ConsoleEntry {
  seq: number
  event: RealmEvent
  topic: ConsoleTopic
  /** the event as one line of text, for search and display */
  line: string
}

export interface ConsoleState {
  entries: ConsoleEntry[]
  held: ConsoleEntry[]
  paused: boolean
  /** held events dropped because the hold was full */
  droppedWhilePaused: number
  nextSeq: number
}

export interface ConsoleFilter {
  topics: ConsoleTopic[]
  text: string
}

export function emptyConsole (): ConsoleState {
  return { entries: [], held: [], paused: false, droppedWhilePaused: 0, nextSeq: 1 }
}

/** The topic of an event type (the node's own rule: its first dotted segment) */
export function topicOfType (type: string): ConsoleTopic {
  const head = type.split('.', 1)[0]
  if (head === 'presence') return 'presence'
  if (head === 'peer') return 'peers'
  if (head === 'task' || head === 'queue') return 'tasks'
  return 'system'
}

/** Fields shown after the type, in a stable order, media left out */
export function eventLine (event: RealmEvent): string {
  const { type: _type, time: _time, ...fields } = event
  const parts: string[] = []
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue
    let text = typeof v === 'string' ? v : JSON.stringify(v)
    if (text.length > 200) text = text.slice(0, 199) + '…'
    parts.push(`${k}=${text}`)
  }
  return parts.join(' ')
}

function keepLast<T> (list: T[], max: number): T[] {
  return list.length > max ? list.slice(list.length - max) : list
}

export function pushEvent (state: ConsoleState, event: RealmEvent): ConsoleState {
  const entry: ConsoleEntry = { seq: state.nextSeq, event, topic: topicOfType(event.type), line: eventLine(event) }
  if (state.paused) {
    if (state.held.length >= CONSOLE_MAX_HELD) return { ...state, droppedWhilePaused: state.droppedWhilePaused + 1, nextSeq: state.nextSeq + 1 }
    return { ...state, held: [...state.held, entry], nextSeq: state.nextSeq + 1 }
  }
  return { ...state, entries: keepLast([...state.entries, entry], CONSOLE_MAX_EVENTS), nextSeq: state.nextSeq + 1 }
}

export function setPaused (state: ConsoleState, paused: boolean): ConsoleState {
  if (paused === state.paused) return state
  if (paused) return { ...state, paused: true }
  return { ...state, paused: false, entries: keepLast([...state.entries, ...state.held], CONSOLE_MAX_EVENTS), held: [], droppedWhilePaused: 0 }
}

export function clearConsole (state: ConsoleState): ConsoleState {
  return { ...state, entries: [], held: [], droppedWhilePaused: 0 }
}

/** Entries that pass the filter: one of its topics, and the text (case-insensitive) in the type or fields */
export function visibleEntries (state: ConsoleState, filter: ConsoleFilter): ConsoleEntry[] {
  const text = filter.text.trim().toLowerCase()
  return state.entries.filter(e => filter.topics.includes(e.topic) && (text === '' || e.event.type.toLowerCase().includes(text) || e.line.toLowerCase().includes(text)))
}
