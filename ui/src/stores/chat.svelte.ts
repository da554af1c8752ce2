/**
 * Conversations of this browser (chat and vision), kept in localStorage; sending a turn runs a
 * chat task with the whole history (stateless) and streams its events into the answer.
 */
import { ApiError, isAbort, sendJson, streamTask } from '../lib/api.js'
import {
  CHAT_STORAGE_KEY, applyTaskEvent, ask, failTurn, historyFor, isPending, newConversation, parseConversations, retry,
  serializeConversations, updateTurn, type ChatImage, type ChatMode, type ChatTurn, type Conversation
} from '../lib/chat.js'
import { priceOf } from '../lib/models.js'
import { load, save } from '../lib/storage.js'
import type { TaskEvent } from '../lib/types.js'
import { realm } from './realm.svelte.js'
import { user } from './user.svelte.js'

/** Conversations are written to storage at most this often while an answer streams */
const PERSIST_DEBOUNCE_MS = 500
/** Images one message may carry (the task protocol allows 8) */
const MAX_ATTACHMENTS = 4
const MODEL_KEY = (mode: ChatMode): string => `rah.model.${mode}`

class ChatStore {
  conversations = $state.raw<Conversation[]>(parseConversations(load(CHAT_STORAGE_KEY)))
  activeId = $state<Record<ChatMode, string | undefined>>({ chat: undefined, vision: undefined })
  chosenModel = $state<Record<ChatMode, string | undefined>>({
    chat: load(MODEL_KEY('chat')) ?? undefined,
    vision: load(MODEL_KEY('vision')) ?? undefined
  })

  /** images waiting to go with the next message (vision) */
  attachments = $state.raw<Record<ChatMode, ChatImage[]>>({ chat: [], vision: [] })
  attachError = $state<string | undefined>()
  storageFull = $state(false)
  private readonly controllers = new Map<string, AbortController>()
  private persistTimer?: ReturnType<typeof setTimeout>

  constructor () {
    for (const mode of ['chat', 'vision'] as const) this.activeId[mode] = this.list(mode)[0]?.id
    // another tab of this browser changed the conversations
    window.addEventListener('storage', (e) => {
      if (e.key === CHAT_STORAGE_KEY && this.controllers.size === 0) this.conversations = parseConversations(e.newValue)
    })
  }

  list (mode: ChatMode): Conversation[] {
    return this.conversations.filter(c => c.mode === mode)
  }

  active (mode: ChatMode): Conversation | undefined {
    const id = this.activeId[mode]
    return id === undefined ? undefined : this.conversations.find(c => c.id === id)
  }

  setModel (mode: ChatMode, model: string | undefined): void {
    this.chosenModel[mode] = model
    save(MODEL_KEY(mode), model ?? null)
  }

  newChat (mode: ChatMode): void {
    const current = this.active(mode)
    // an empty conversation is reused rather than piled up
    if (current != null && current.turns.length === 0) return
    const conv = newConversation(mode, this.chosenModel[mode])
    this.conversations = [conv, ...this.conversations]
    this.activeId[mode] = conv.id
  }

  select (mode: ChatMode, id: string): void {
    this.activeId[mode] = id
  }

  remove (mode: ChatMode, id: string): void {
    const conv = this.conversations.find(c => c.id === id)
    for (const t of conv?.turns ?? []) this.controllers.get(t.id)?.abort()
    this.conversations = this.conversations.filter(c => c.id !== id)
    if (this.activeId[mode] === id) this.activeId[mode] = this.list(mode)[0]?.id
    this.persist(true)
  }

  attach (mode: ChatMode, image: ChatImage): void {
    this.attachError = undefined
    const list = this.attachments[mode]
    if (list.length >= MAX_ATTACHMENTS) {
      this.attachError = `At most ${MAX_ATTACHMENTS} images per message.`
      return
    }
    this.attachments = { ...this.attachments, [mode]: [...list, image] }
  }

  detach (mode: ChatMode, index: number): void {
    this.attachments = { ...this.attachments, [mode]: this.attachments[mode].filter((_, i) => i !== index) }
  }

  busy (mode: ChatMode): boolean {
    return this.active(mode)?.turns.some(isPending) === true
  }

  /** `onEvent`: sees the task's events as they come (the voice reads the answer out as it streams) */
  async send (mode: ChatMode, text: string, images: ChatImage[], onEvent?: (event: TaskEvent) => void): Promise<void> {
    const model = this.chosenModel[mode]
    if (model === undefined) return
    let conv = this.active(mode)
    if (conv == null) {
      conv = newConversation(mode, model)
      this.conversations = [conv, ...this.conversations]
      this.activeId[mode] = conv.id
    }
    const asked = ask(conv, text, images, model)
    this.attachments = { ...this.attachments, [mode]: [] }
    this.replace(asked.conv)
    await this.run(asked.conv.id, asked.assistantId, model, onEvent)
  }

  async retry (mode: ChatMode, turnId: string): Promise<void> {
    const conv = this.active(mode)
    const model = this.chosenModel[mode] ?? conv?.model
    if (conv == null || model === undefined) return
    const again = retry(conv, turnId, model)
    if (again == null) return
    this.replace(again.conv)
    await this.run(again.conv.id, again.assistantId, model)
  }

  /** Stop the answer being written: cancel the task on the node and drop the stream */
  stop (mode: ChatMode): void {
    for (const turn of this.active(mode)?.turns ?? []) {
      if (!isPending(turn)) continue
      if (turn.taskId !== undefined) void sendJson('DELETE', `/realm/tasks/${encodeURIComponent(turn.taskId)}`).catch(() => {})
      this.controllers.get(turn.id)?.abort()
    }
  }

  private async run (convId: string, turnId: string, model: string, onEvent?: (event: TaskEvent) => void): Promise<void> {
    const conv = this.conversations.find(c => c.id === convId)
    if (conv == null) return
    const controller = new AbortController()
    this.controllers.set(turnId, controller)
    const update = (fn: (t: ChatTurn) => ChatTurn): void => {
      const current = this.conversations.find(c => c.id === convId)
      if (current != null) this.replace(updateTurn(current, turnId, fn))
    }
    try {
      await streamTask({ kind: 'chat', model, input: { messages: historyFor(conv, turnId) } }, {
        signal: controller.signal,
        onEvent: (event) => {
          update(t => applyTaskEvent(t, event, (peerId, m) => priceOf(realm.catalog, peerId, m)))
          onEvent?.(event)
        }
      })
    } catch (err) {
      if (isAbort(err)) update(t => failTurn(t, 'CANCELLED', 'Stopped.'))
      else if (err instanceof ApiError) {
        user.noteError(err)
        update(t => failTurn(t, err.code, err.message))
      } else update(t => failTurn(t, 'NETWORK', err instanceof Error ? err.message : String(err)))
    } finally {
      this.controllers.delete(turnId)
      this.persist(true)
    }
  }

  private replace (conv: Conversation): void {
    this.conversations = this.conversations.map(c => c.id === conv.id ? conv : c)
    this.persist(false)
  }

  private persist (now: boolean): void {
    if (this.persistTimer !== undefined) clearTimeout(this.persistTimer)
    const write = (): void => {
      this.persistTimer = undefined
      this.storageFull = !save(CHAT_STORAGE_KEY, serializeConversations(this.conversations))
    }
    if (now) write()
    else this.persistTimer = setTimeout(write, PERSIST_DEBOUNCE_MS)
  }
}

export const chat = new ChatStore()
