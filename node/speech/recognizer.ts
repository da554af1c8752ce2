/**
 * One pocketsphinx decode of a clip of 16 kHz PCM, in one of three modes:
 * - `dictation`: the en-us language model — any words, poorly;
 * - `grammar`: a JSGF grammar (grammar.ts) — only its phrases, the whole clip as one utterance;
 * - `keyword`: keyword spotting — did the clip contain the phrase (nothing is forced to match).
 *
 * The CLI (pocketsphinx_continuous) reads the clip from a file in a private temporary folder:
 * it opens `-infile` by path, and Node's stdin pipes are sockets that `/dev/stdin` cannot open.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DITHER_ARGS, ENGINE_PACKAGES, GRAMMAR_BEAMS, MAX_TEXT_OUTPUT_BYTES, PAD_AFTER_MS, PAD_BEFORE_MS } from './constants.js'
import { silence } from './audio.js'
import type { SpeechEngines } from './engines.js'
import { modelPaths } from './engines.js'
import { SpeechEngineError } from './errors.js'
import { runProcess, stderrReason } from './process.js'

export type RecognizeMode =
  | { type: 'dictation' }
  | { type: 'grammar', grammar: string }
  | { type: 'keyword', phrase: string, threshold: number }

/** A word and where it was heard, in seconds from the start of the clip given */
export interface WordTime {
  word: string
  start: number
  end: number
}

export interface Recognition {
  /** the hypotheses joined; for `keyword`, the phrase when heard, else '' */
  text: string
  /** one hypothesis per utterance pocketsphinx's VAD found (one for `grammar`) */
  utterances: string[]
  /** with `times`: the words (fillers left out) */
  words: WordTime[]
}

export interface RecognizeOptions {
  signal?: AbortSignal
  timeoutMs: number
  /** ask for word times (`-time yes`). Default false */
  times?: boolean
  /** sees each utterance's hypothesis as pocketsphinx prints it */
  onUtterance?: (text: string) => void
}

const WORD_TIME = /^(\S+) (-?\d+(?:\.\d+)?) (-?\d+(?:\.\d+)?) (\S+)$/

export async function recognize (pcm: Buffer, mode: RecognizeMode, engines: SpeechEngines, opts: RecognizeOptions): Promise<Recognition> {
  const { hmm, dict, lm } = modelPaths(engines)
  const dir = await mkdtemp(join(tmpdir(), 'realm-speech-'))
  try {
    const audioPath = join(dir, 'clip.raw')
    // padded: pocketsphinx's VAD and the spotter miss speech that starts at the first sample
    await writeFile(audioPath, Buffer.concat([silence(PAD_BEFORE_MS), pcm, silence(PAD_AFTER_MS)]))
    const args = ['-infile', audioPath, '-hmm', hmm, '-dict', dict, ...DITHER_ARGS]
    switch (mode.type) {
      case 'dictation':
        args.push('-lm', lm)
        break
      case 'grammar': {
        const grammarPath = join(dir, 'phrases.gram')
        await writeFile(grammarPath, mode.grammar)
        // one utterance: a pause inside a command must not split it into two half-matches
        args.push('-jsgf', grammarPath, ...GRAMMAR_BEAMS, '-remove_silence', 'no')
        break
      }
      case 'keyword':
        args.push('-keyphrase', mode.phrase, '-kws_threshold', String(mode.threshold))
        break
    }
    if (opts.times === true) args.push('-time', 'yes')

    const utterances: string[] = []
    const words: WordTime[] = []
    const offset = PAD_BEFORE_MS / 1000
    let partial = ''
    const onLine = (line: string): void => {
      const timed = opts.times === true ? WORD_TIME.exec(line) : null
      if (timed !== null) {
        const word = (timed[1] ?? '').replace(/\(\d+\)$/, '')
        // fillers: <s>, </s>, <sil>, [NOISE], ++BREATH++
        if (/^[<[+]/.test(word)) return
        words.push({ word, start: Math.max(0, Number(timed[2]) - offset), end: Math.max(0, Number(timed[3]) - offset) })
        return
      }
      const text = line.trim()
      if (text === '') return
      utterances.push(text)
      opts.onUtterance?.(text)
    }
    const result = await runProcess(engines.pocketsphinx, args, {
      engine: 'pocketsphinx',
      pkg: ENGINE_PACKAGES.pocketsphinx,
      timeoutMs: opts.timeoutMs,
      maxOutputBytes: MAX_TEXT_OUTPUT_BYTES,
      ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
      onStdout: chunk => {
        partial += chunk.toString('utf8')
        const lines = partial.split('\n')
        partial = lines.pop() ?? ''
        for (const line of lines) onLine(line)
      }
    })
    if (partial !== '') onLine(partial)
    if (result.code !== 0) throw new SpeechEngineError(`pocketsphinx failed: ${stderrReason(result.stderr) || `exit ${String(result.code)}`}`)
    const text = mode.type === 'keyword'
      ? (utterances.length > 0 ? mode.phrase : '')
      : utterances.join(' ')
    return { text, utterances, words }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
