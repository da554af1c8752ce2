/**
 * Text for the voice: answers cut into sentences as they stream in (each is spoken as soon as it
 * is complete), Markdown turned into what can be said, what the browser's own recogniser heard
 * read as wake word / mode / prompt, and the phrases the node's recogniser is told to expect.
 * Pure; tested in test/unit/ui-voice.test.ts.
 */

export const VOICE_MODES = ['chat', 'vision', 'imagine'] as const
export type VoiceMode = typeof VOICE_MODES[number]

/** The word that wakes the hands-free voice (the node's recogniser uses the same) */
export const WAKE_WORD = 'computer'
/** Longest piece spoken at once: a run-on sentence is cut at a comma or a space before this */
export const MAX_SENTENCE_CHARS = 240
/** Words ending in a period that do not end a sentence */
const ABBREVIATIONS = new Set(['e.g', 'i.e', 'mr', 'mrs', 'ms', 'dr', 'prof', 'sr', 'jr', 'st', 'vs', 'etc', 'no', 'fig', 'approx', 'cf', 'inc', 'ltd'])

/**
 * What can be said of a piece of Markdown: no markup, no code, links as their text. '' when
 * nothing is left to say (a rule, a lone bullet, punctuation).
 */
export function speakable (markdown: string): string {
  let text = markdown
    // images: their alt text; links: their text
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\[([^\]]+)\]\([^)]*\)/g, '$1')
    // inline code: said as it is, without the backticks
    .replace(/`([^`]*)`/g, '$1')
    // HTML tags are not read out
    .replace(/<\/?[a-zA-Z][^>]*>/g, ' ')
    // headings, quotes, list markers at the start
    .replace(/^\s{0,3}(#{1,6}|>+)\s*/, '')
    .replace(/^\s*(?:[-*+•]|\d{1,3}[.)])\s+/, '')
    // emphasis markers, table pipes, rules
    .replace(/(\*\*|__|\*|~~)/g, '')
    .replace(/(^|\s)_([^_]+)_(?=\s|$|[.,!?;:])/g, '$1$2')
    .replace(/\|/g, ' ')
    .replace(/^[-=_*]{3,}$/, '')
    // bare URLs: "a link" (nobody wants them spelt out)
    .replace(/\bhttps?:\/\/\S+/g, 'a link')
  text = text.replace(/\s+/g, ' ').trim()
  return /[\p{L}\p{N}]/u.test(text) ? text : ''
}

/** Cut a long piece at the last comma, semicolon or space before the limit */
function cutLong (sentence: string, max: number): string[] {
  const out: string[] = []
  let rest = sentence
  while (rest.length > max) {
    const head = rest.slice(0, max)
    let at = Math.max(head.lastIndexOf(', '), head.lastIndexOf('; '), head.lastIndexOf(': '))
    if (at < max / 3) at = head.lastIndexOf(' ')
    if (at <= 0) at = max
    out.push(rest.slice(0, at + 1).trim())
    rest = rest.slice(at + 1).trim()
  }
  if (rest !== '') out.push(rest)
  return out
}

/** Does the `.`, `!`, `?` or `…` at `i` end a sentence (not an abbreviation or an initial)? */
function endsSentence (text: string, i: number): boolean {
  if (text[i] !== '.') return true
  const word = /([\p{L}.]+)$/u.exec(text.slice(0, i))?.[1]?.toLowerCase() ?? ''
  if (ABBREVIATIONS.has(word)) return false
  // an initial: "J. R. R. Tolkien"
  if (/^\p{L}$/u.test(word) && /\p{Lu}/u.test(text[i - 1] ?? '')) return false
  return true
}

/** A list item's or a quote's marker at the start of a line */
const LINE_MARKER = /^\s*(?:[-*+•]|\d{1,3}[.)]|>+)\s+/

/** Closing quotes and brackets stay with the sentence they end */
const CLOSERS = /["'”’»)\]]/

/**
 * When a sentence ends at `i`: the index after it (its closing quotes included), if what
 * follows is white space or the end of the text; else undefined
 */
function sentenceEndAt (text: string, i: number): number | undefined {
  if (!/[.!?…]/.test(text[i]!)) return undefined
  let end = i + 1
  while (end < text.length && CLOSERS.test(text[end]!)) end++
  if (end < text.length && !/\s/.test(text[end]!)) return undefined
  return endsSentence(text, i) ? end : undefined
}

/**
 * Streams Markdown in, sentences out: `push` gives every sentence completed by the new text
 * (a sentence is complete when the white space after its end has arrived, or at a line break),
 * `flush` the rest once the text has ended. Code blocks are not read out.
 */
export class SentenceSplitter {
  private pending = ''
  private inCode = false
  private current = ''
  /** `pending` starts a line (its list marker not taken yet) */
  private atLineStart = true

  constructor (private readonly maxChars = MAX_SENTENCE_CHARS) {}

  push (text: string): string[] {
    this.pending += text
    const out: string[] = []
    let nl: number
    while ((nl = this.pending.indexOf('\n')) >= 0) {
      const line = this.pending.slice(0, nl)
      this.pending = this.pending.slice(nl + 1)
      this.line(line, true, out)
    }
    // the unfinished line: only its complete sentences
    if (!this.inCode && !/^\s*[`~]/.test(this.pending)) {
      const marker = this.atLineStart ? LINE_MARKER.exec(this.pending)?.[0].length ?? 0 : 0
      const cut = this.lastSentenceEnd(this.pending, marker)
      if (cut > 0) {
        this.current += this.pending.slice(marker, cut)
        this.pending = this.pending.slice(cut)
        this.atLineStart = false
        this.emit(out)
      }
    }
    return out
  }

  flush (): string[] {
    const out: string[] = []
    const rest = this.pending
    this.pending = ''
    if (rest !== '') this.line(rest, true, out)
    this.emit(out)
    this.inCode = false
    this.atLineStart = true
    return out
  }

  /** Where the last complete sentence of `text` ends (its white space not included), 0 when none */
  private lastSentenceEnd (text: string, from: number): number {
    let last = 0
    for (let i = from; i < text.length; i++) {
      const end = sentenceEndAt(text, i)
      if (end !== undefined && end < text.length) last = end
    }
    return last
  }

  private line (line: string, ended: boolean, out: string[]): void {
    if (/^\s*(```|~~~)/.test(line)) {
      this.emit(out)
      this.inCode = !this.inCode
      this.atLineStart = true
      return
    }
    if (this.inCode) return
    this.current += this.atLineStart ? line.replace(LINE_MARKER, '') : line
    this.atLineStart = ended
    // a line break ends a sentence (list items, headings, paragraphs)
    if (ended) this.emit(out)
  }

  /** Everything gathered so far, as sentences */
  private emit (out: string[]): void {
    const text = this.current
    this.current = ''
    if (text.trim() === '') return
    let start = 0
    for (let i = 0; i < text.length; i++) {
      const end = sentenceEndAt(text, i)
      if (end === undefined) continue
      this.add(text.slice(start, end), out)
      start = end
      i = end - 1
    }
    this.add(text.slice(start), out)
  }

  private add (piece: string, out: string[]): void {
    const said = speakable(piece)
    if (said !== '') out.push(...cutLong(said, this.maxChars))
  }
}

/**
 * Reads an answer as it streams: sentences to speak from its tokens; when the answer starts again
 * (the worker failed, another one took over) the sentences already read are not read twice; at
 * the end, the rest (of the final text, when it differs from what streamed).
 */
export class AnswerReader {
  private splitter: SentenceSplitter
  private text = ''
  /** sentences handed out so far */
  private delivered = 0
  /** sentences of the current attempt so far */
  private produced = 0

  constructor (private readonly maxChars = MAX_SENTENCE_CHARS) {
    this.splitter = new SentenceSplitter(maxChars)
  }

  token (text: string): string[] {
    this.text += text
    return this.take(this.splitter.push(text))
  }

  restart (): void {
    this.splitter = new SentenceSplitter(this.maxChars)
    this.text = ''
    this.produced = 0
  }

  /** The answer has ended; `finalText` is its whole text where the end says it */
  done (finalText?: string): string[] {
    if (finalText !== undefined && finalText !== this.text) {
      this.restart()
      const all = new SentenceSplitter(this.maxChars)
      return this.take([...all.push(finalText), ...all.flush()])
    }
    return this.take(this.splitter.flush())
  }

  private take (sentences: string[]): string[] {
    const out: string[] = []
    for (const s of sentences) {
      this.produced++
      if (this.produced > this.delivered) {
        out.push(s)
        this.delivered = this.produced
      }
    }
    return out
  }
}

/** Lower-case words, punctuation gone */
export function words (text: string): string[] {
  return text.toLowerCase().normalize('NFKD').replace(/\p{M}/gu, '').replace(/[^a-z0-9']+/g, ' ').trim().split(' ').filter(w => w !== '')
}

/** What the browser's recogniser heard, read for the voice: the wake word, a mode, a prompt */
export interface ParsedSpeech {
  wake?: boolean
  mode?: VoiceMode
  prompt?: string
}

/**
 * A transcript read in light of what is expected next: `wake` (asleep: nothing counts before the
 * wake word), `mode` (awake: a mode word, then maybe its prompt), `prompt` (everything is the
 * prompt). Said in one breath, "computer chat what is the realm" gives all three.
 */
export function parseTranscript (text: string, expect: 'wake' | 'mode' | 'prompt', wakeWord = WAKE_WORD): ParsedSpeech {
  let rest = text.trim().split(/\s+/).filter(w => w !== '')
  const out: ParsedSpeech = {}
  if (expect === 'wake') {
    const at = rest.findIndex(w => words(w)[0] === wakeWord)
    if (at < 0) return out
    out.wake = true
    rest = rest.slice(at + 1)
    expect = 'mode'
  }
  if (expect === 'mode') {
    const first = words(rest[0] ?? '')[0]
    if (first === undefined) return out
    if (!(VOICE_MODES as readonly string[]).includes(first)) return out
    out.mode = first as VoiceMode
    rest = rest.slice(1)
  }
  const prompt = rest.join(' ').trim()
  if (prompt !== '') out.prompt = prompt
  return out
}

/** What a recogniser reports, in the node's terms */
export type HeardEvent =
  | { type: 'wake' }
  | { type: 'partial', mode: VoiceMode }
  | { type: 'result', mode?: VoiceMode, prompt: string }
  | { type: 'sleep', reason: 'not-understood' }

export type Expect = 'wake' | 'mode' | 'prompt'

/**
 * One final transcript of the browser's recogniser in hands-free: the events it makes, and what
 * is expected after it. Awake, words that name no mode put the voice back to sleep.
 */
export function readTranscript (text: string, expect: Expect, wakeWord = WAKE_WORD): { events: HeardEvent[], expect: Expect } {
  const p = parseTranscript(text, expect, wakeWord)
  const events: HeardEvent[] = []
  if (p.wake === true) events.push({ type: 'wake' })
  if (expect === 'wake' && p.wake !== true) return { events, expect: 'wake' }
  if (expect === 'prompt' && p.prompt === undefined) return { events, expect: 'prompt' }
  if (p.mode !== undefined) events.push({ type: 'partial', mode: p.mode })
  if (p.prompt !== undefined && (p.mode !== undefined || expect === 'prompt')) {
    events.push({ type: 'result', prompt: p.prompt, ...(p.mode !== undefined ? { mode: p.mode } : {}) })
    return { events, expect: 'wake' }
  }
  if (p.mode !== undefined) return { events, expect: 'prompt' }
  if (p.wake === true) return { events, expect: 'mode' }
  events.push({ type: 'sleep', reason: 'not-understood' })
  return { events, expect: 'wake' }
}

/** A push-to-talk transcript: a leading mode word picks the mode, the rest is the prompt */
export function parseDictation (text: string): { mode?: VoiceMode, prompt: string } {
  const parsed = parseTranscript(text, 'mode')
  if (parsed.mode !== undefined && parsed.prompt !== undefined) return { mode: parsed.mode, prompt: parsed.prompt }
  return { prompt: text.trim() }
}

/** Questions an empty chat suggests; the node's recogniser also expects them (a slip of dictation is corrected to one) */
export const SUGGESTED_PROMPTS: readonly string[] = [
  'What is the realm?',
  'How do I share my GPU with the realm?',
  'Tell me a joke.',
  'Explain how a peer-to-peer network works.'
]

/** Most phrases sent to the node (its limit is 100) and their longest */
export const MAX_VOICE_PHRASES = 100
export const MAX_VOICE_PHRASE_CHARS = 200

/**
 * The phrases the node's recogniser is told to expect: the suggestions, then this browser's
 * recent prompts (newest first), each once, within the node's limits.
 */
export function voicePhrases (recentPrompts: readonly string[], suggestions: readonly string[] = SUGGESTED_PROMPTS): string[] {
  const out: string[] = []
  const seen = new Set<string>()
  for (const phrase of [...suggestions, ...recentPrompts]) {
    const p = phrase.replace(/\s+/g, ' ').trim()
    const key = words(p).join(' ')
    if (key === '' || p.length > MAX_VOICE_PHRASE_CHARS || seen.has(key)) continue
    seen.add(key)
    out.push(p)
    if (out.length >= MAX_VOICE_PHRASES) break
  }
  return out
}
