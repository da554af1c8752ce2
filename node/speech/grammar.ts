/**
 * Phrases a client sends → words pocketsphinx knows → a JSGF grammar. Phrase text is reduced to
 * lower-case letters, digits and apostrophes (everything else separates words), so nothing a
 * client sends can reach the grammar's syntax; words missing from the pronouncing dictionary are
 * dropped (the decoder cannot say them).
 */
import { readFile } from 'node:fs/promises'
import { MAX_PHRASE_CHARS, MAX_PHRASES } from './constants.js'
import { SpeechInputError } from './errors.js'

/** The dictionary's words, read once per path (cmudict-en-us: 134k entries, ~3 MB) */
const dictionaries = new Map<string, Promise<Set<string>>>()

export async function loadDictionary (path: string): Promise<Set<string>> {
  let words = dictionaries.get(path)
  if (words === undefined) {
    words = readFile(path, 'utf8').then(text => {
      const set = new Set<string>()
      for (const line of text.split('\n')) {
        const space = line.indexOf(' ')
        if (space <= 0) continue
        // alternates are listed as `word(2)`
        set.add(line.slice(0, space).replace(/\(\d+\)$/, ''))
      }
      return set
    })
    // a failed read is retried next time (the package may be installed meanwhile)
    words.catch(() => dictionaries.delete(path))
    dictionaries.set(path, words)
  }
  return await words
}

/** Lower-case words of a phrase: letters (accents removed), digits and inner apostrophes */
export function phraseWords (phrase: string): string[] {
  return phrase
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[\u2018\u2019\u02bc]/g, "'")
    .replace(/[^a-z0-9']+/g, ' ')
    .split(' ')
    .map(w => w.replace(/^'+|'+$/g, ''))
    .filter(w => w !== '')
}

export interface PreparedPhrases {
  /** normalised phrases of known words, unique, in the order given */
  phrases: string[]
  /** words dropped because the dictionary does not have them */
  dropped: string[]
}

/** Normalises phrases and drops unknown words; throws SpeechInputError when over the limits */
export function preparePhrases (phrases: readonly string[], dictionary: Set<string>): PreparedPhrases {
  if (phrases.length > MAX_PHRASES) throw new SpeechInputError(`at most ${MAX_PHRASES} phrases`)
  const out: string[] = []
  const dropped = new Set<string>()
  for (const phrase of phrases) {
    if (typeof phrase !== 'string') throw new SpeechInputError('phrases must be strings')
    if (phrase.length > MAX_PHRASE_CHARS) throw new SpeechInputError(`a phrase is longer than ${MAX_PHRASE_CHARS} characters`)
    const known: string[] = []
    for (const word of phraseWords(phrase)) {
      if (dictionary.has(word)) known.push(word)
      else dropped.add(word)
    }
    const text = known.join(' ')
    if (text !== '' && !out.includes(text)) out.push(text)
  }
  return { phrases: out, dropped: [...dropped] }
}

/**
 * A JSGF grammar: `public <utterance> = <command> [<phrase>] | <phrase>` when both are given
 * (a prompt said without a command is not forced into one), else one of them. Every token is a dictionary word (preparePhrases), so none needs quoting.
 */
export function jsgfGrammar (parts: { commands?: readonly string[], phrases?: readonly string[] }): string {
  const commands = parts.commands ?? []
  const phrases = parts.phrases ?? []
  if (commands.length === 0 && phrases.length === 0) throw new SpeechInputError('a grammar needs at least one phrase')
  const lines = ['#JSGF V1.0;', 'grammar realm;']
  let body: string
  if (commands.length > 0 && phrases.length > 0) body = '<command> [<phrase>] | <phrase>'
  else if (commands.length > 0) body = '<command>'
  else body = '<phrase>'
  lines.push(`public <utterance> = ${body};`)
  if (commands.length > 0) lines.push(`<command> = ${commands.join(' | ')};`)
  if (phrases.length > 0) lines.push(`<phrase> = ${phrases.join(' | ')};`)
  return lines.join('\n') + '\n'
}
