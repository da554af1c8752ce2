/**
 * Conversations: their turns, how a task's events change the assistant turn that waits for
 * them (a pure reducer), the history sent with each task (stateless: the whole conversation
 * every time), and how they are kept in localStorage. Tested in test/unit/ui-chat.test.ts.
 */
import type { ChatMessage, TaskEvent, TaskTimings } from './types.js'
import { taskCost, titleFrom } from './format.js'

export type ChatMode = 'chat' | 'vision'
export type TurnStatus = 'sending' | 'queued' | 'running' | 'done' | 'error' | 'cancelled'

export interface ChatImage {
  mime: string
  /** base64, no data: prefix */
  data: string
}

export interface TurnNote {
  kind: 'restarted' | 'trimmed'
  text: string
}

export interface Usage {
  promptTokens?: number
  completionTokens?: number
  units?: number
}

export interface ChatTurn {
  id: string
  role: 'user' | 'assistant'
  content: string
  createdAt: number
  /** user turns: images attached (vision) */
  images?: ChatImage[]
  /** images left out of storage to keep it under its cap */
  imagesDropped?: number
  /** assistant turns: */
  status?: TurnStatus
  taskId?: string
  model?: string
  queue?: { position: number, etaMs: number }
  peerId?: string
  workerId?: string
  timings?: TaskTimings
  usage?: Usage
  /** credits: usage units × the answering peer's price, where both are known */
  cost?: number
  notes?: TurnNote[]
  error?: { code: string, message: string }
}

export interface Conversation {
  id: string
  mode: ChatMode
  title: string
  model?: string
  turns: ChatTurn[]
  createdAt: number
  updatedAt: number
}

/** A random id for turns and conversations (local only) */
export function localId (): string {
  const bytes = new Uint8Array(9)
  globalThis.crypto.getRandomValues(bytes)
  return Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('')
}

export function newConversation (mode: ChatMode, model: string | undefined, now = Date.now(), id = localId()): Conversation {
  return { id, mode, title: 'New chat', model, turns: [], createdAt: now, updatedAt: now }
}

/** The conversation with the user's message and an assistant turn waiting for the task */
export function ask (conv: Conversation, text: string, images: ChatImage[], model: string, now = Date.now()): { conv: Conversation, assistantId: string } {
  const user: ChatTurn = { id: localId(), role: 'user', content: text, createdAt: now }
  if (images.length > 0) user.images = images
  const assistant: ChatTurn = { id: localId(), role: 'assistant', content: '', createdAt: now, status: 'sending', model }
  const title = conv.turns.length === 0 ? titleFrom(text) : conv.title
  return { conv: { ...conv, title, model, turns: [...conv.turns, user, assistant], updatedAt: now }, assistantId: assistant.id }
}

/**
 * Retry an assistant turn: it and everything after it go, and a new waiting turn takes its
 * place (the same user message is asked again). `undefined` when there is no such turn.
 */
export function retry (conv: Conversation, assistantId: string, model: string, now = Date.now()): { conv: Conversation, assistantId: string } | undefined {
  const i = conv.turns.findIndex(t => t.id === assistantId && t.role === 'assistant')
  if (i < 0) return undefined
  const assistant: ChatTurn = { id: localId(), role: 'assistant', content: '', createdAt: now, status: 'sending', model }
  return { conv: { ...conv, model, turns: [...conv.turns.slice(0, i), assistant], updatedAt: now }, assistantId: assistant.id }
}

/**
 * The messages a task carries: every user turn and every finished answer before `beforeId`
 * (an unfinished or failed answer is left out, not half sent).
 */
export function historyFor (conv: Conversation, beforeId: string): ChatMessage[] {
  const messages: ChatMessage[] = []
  for (const turn of conv.turns) {
    if (turn.id === beforeId) break
    if (turn.role === 'user') {
      const m: ChatMessage = { role: 'user', content: turn.content }
      if (turn.images != null && turn.images.length > 0) m.images = turn.images.map(img => img.data)
      messages.push(m)
    } else if (turn.status === 'done') {
      messages.push({ role: 'assistant', content: turn.content })
    }
  }
  return messages
}

export function updateTurn (conv: Conversation, id: string, fn: (turn: ChatTurn) => ChatTurn, now = Date.now()): Conversation {
  let changed = false
  const turns = conv.turns.map(t => {
    if (t.id !== id) return t
    changed = true
    return fn(t)
  })
  return changed ? { ...conv, turns, updatedAt: now } : conv
}

export type PriceOf = (peerId: string, model: string) => number | undefined

function addNote (turn: ChatTurn, note: TurnNote): TurnNote[] {
  return [...(turn.notes ?? []), note]
}

/** An assistant turn after one event of its task */
export function applyTaskEvent (turn: ChatTurn, event: TaskEvent, priceOf?: PriceOf): ChatTurn {
  switch (event.type) {
    case 'task.submitted':
      return { ...turn, taskId: event.id, model: event.model }
    case 'task.queued':
      return { ...turn, taskId: event.id, status: 'queued', queue: { position: event.position, etaMs: event.etaMs }, peerId: event.peerId }
    case 'task.started': {
      const { queue: _queue, ...rest } = turn
      return { ...rest, status: 'running', peerId: event.peerId, workerId: event.workerId }
    }
    case 'task.token': {
      const { queue: _queue, ...rest } = turn
      return { ...rest, status: 'running', content: turn.content + event.text }
    }
    case 'task.restarted':
      return {
        ...turn,
        content: '',
        status: 'running',
        notes: addNote(turn, { kind: 'restarted', text: `The worker stopped (${event.reason}); the answer started again on another one (attempt ${event.attempt}).` })
      }
    case 'task.trimmed': {
      const n = event.dropped
      return { ...turn, notes: addNote(turn, { kind: 'trimmed', text: `${n} earliest message${n === 1 ? ' was' : 's were'} left out: the conversation is longer than the model's context.` }) }
    }
    case 'task.done': {
      const { queue: _queue, ...rest } = turn
      const usage = event.output.usage
      const model = turn.model ?? ''
      const done: ChatTurn = {
        ...rest,
        status: 'done',
        content: event.output.text ?? turn.content,
        peerId: event.peerId,
        workerId: event.workerId,
        timings: event.timings
      }
      if (usage != null) done.usage = usage
      const units = usage?.units ?? (usage?.completionTokens != null ? (usage.promptTokens ?? 0) + usage.completionTokens : undefined)
      const cost = taskCost(units, priceOf?.(event.peerId, model))
      if (cost !== undefined) done.cost = cost
      return done
    }
    case 'task.error': {
      const { queue: _queue, ...rest } = turn
      const ended: ChatTurn = { ...rest, status: event.code === 'CANCELLED' ? 'cancelled' : 'error', error: { code: event.code, message: event.message } }
      if (event.timings != null) ended.timings = event.timings
      return ended
    }
    default:
      return turn
  }
}

/** A turn whose task could not be sent or whose stream broke */
export function failTurn (turn: ChatTurn, code: string, message: string): ChatTurn {
  if (turn.status === 'done' || turn.status === 'error' || turn.status === 'cancelled') return turn
  const { queue: _queue, ...rest } = turn
  return { ...rest, status: code === 'CANCELLED' ? 'cancelled' : 'error', error: { code, message } }
}

export function isPending (turn: ChatTurn): boolean {
  return turn.status === 'sending' || turn.status === 'queued' || turn.status === 'running'
}

/** What the conversation's answers cost, in credits */
export function spentOn (conv: Conversation): number {
  return conv.turns.reduce((sum, t) => sum + (t.cost ?? 0), 0)
}

// ---- storage ----

export const CHAT_STORAGE_KEY = 'rah.chat.v1'
/** What the conversations may take in localStorage, in characters (browsers allow ~5 M per origin) */
export const CHAT_STORAGE_MAX_CHARS = 3_000_000
/** Most conversations kept */
export const MAX_CONVERSATIONS = 200

/**
 * The conversations as stored: newest kept first. When they do not fit in `maxChars`, images of
 * the oldest conversations are left out first, then the oldest conversations.
 */
export function serializeConversations (list: Conversation[], maxChars = CHAT_STORAGE_MAX_CHARS): string {
  let kept = [...list].sort((a, b) => b.updatedAt - a.updatedAt).slice(0, MAX_CONVERSATIONS)
  let text = JSON.stringify(kept)
  if (text.length <= maxChars) return text
  // drop images, oldest conversation first
  for (let i = kept.length - 1; i >= 0 && text.length > maxChars; i--) {
    kept[i] = withoutImages(kept[i])
    text = JSON.stringify(kept)
  }
  while (text.length > maxChars && kept.length > 0) {
    kept = kept.slice(0, -1)
    text = JSON.stringify(kept)
  }
  return text
}

function withoutImages (conv: Conversation): Conversation {
  return {
    ...conv,
    turns: conv.turns.map(t => {
      if (t.images == null || t.images.length === 0) return t
      const { images, ...rest } = t
      return { ...rest, imagesDropped: (t.imagesDropped ?? 0) + images.length }
    })
  }
}

function isTurn (v: unknown): v is ChatTurn {
  const t = v as ChatTurn
  return t != null && typeof t === 'object' && typeof t.id === 'string' && (t.role === 'user' || t.role === 'assistant') && typeof t.content === 'string'
}

/**
 * Conversations read back from storage; anything malformed is left out. A turn that was still
 * waiting when the page closed is marked as interrupted (its task ended with the page).
 */
export function parseConversations (text: string | null): Conversation[] {
  if (text == null || text === '') return []
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    return []
  }
  if (!Array.isArray(raw)) return []
  const out: Conversation[] = []
  for (const c of raw) {
    if (c == null || typeof c !== 'object' || typeof c.id !== 'string' || !Array.isArray(c.turns)) continue
    const mode: ChatMode = c.mode === 'vision' ? 'vision' : 'chat'
    const turns = (c.turns as unknown[]).filter(isTurn).map(t => isPending(t) ? failTurn(t, 'INTERRUPTED', 'the page was closed before the answer ended') : t)
    out.push({
      id: c.id,
      mode,
      title: typeof c.title === 'string' ? c.title : 'Chat',
      model: typeof c.model === 'string' ? c.model : undefined,
      turns,
      createdAt: Number(c.createdAt) || 0,
      updatedAt: Number(c.updatedAt) || 0
    })
  }
  return out.sort((a, b) => b.updatedAt - a.updatedAt)
}
