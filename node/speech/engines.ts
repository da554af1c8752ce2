/**
 * Where the offline engines are, and whether they run: the checks behind a speech worker's probe
 * and `realm doctor`. Every check spawns the binary (no shell) with a short time limit.
 */
import { access, constants as fsConstants } from 'node:fs/promises'
import { join } from 'node:path'
import { errorMessage } from '../../protocol/errors.js'
import {
  CHECK_TIMEOUT_MS, ENGINE_PACKAGES, ESPEAK_BIN, FFMPEG_BIN, MAX_TEXT_OUTPUT_BYTES, POCKETSPHINX_BIN, POCKETSPHINX_DICT,
  POCKETSPHINX_HMM, POCKETSPHINX_LM, POCKETSPHINX_MODEL_DIR, SOX_BIN
} from './constants.js'
import { SpeechEngineError, SpeechEngineMissingError } from './errors.js'
import { runProcess } from './process.js'

/** Binaries (names looked up on PATH, or absolute paths) and the pocketsphinx model folder */
export interface SpeechEngines {
  /** Default 'espeak-ng' */
  espeak: string
  /** Default 'pocketsphinx_continuous' (pocketsphinx 0.8 / 5prealpha CLI, Debian 12) */
  pocketsphinx: string
  /** Default 'ffmpeg' */
  ffmpeg: string
  /** Default 'sox' */
  sox: string
  /** folder holding `en-us/` (acoustic model), `cmudict-en-us.dict`, `en-us.lm.bin`. Default /usr/share/pocketsphinx/model/en-us */
  modelDir: string
}

export function resolveEngines (init: Partial<SpeechEngines> = {}): SpeechEngines {
  return {
    espeak: init.espeak ?? ESPEAK_BIN,
    pocketsphinx: init.pocketsphinx ?? POCKETSPHINX_BIN,
    ffmpeg: init.ffmpeg ?? FFMPEG_BIN,
    sox: init.sox ?? SOX_BIN,
    modelDir: init.modelDir ?? POCKETSPHINX_MODEL_DIR
  }
}

/** The pocketsphinx model files */
export function modelPaths (engines: SpeechEngines): { hmm: string, dict: string, lm: string } {
  return {
    hmm: join(engines.modelDir, POCKETSPHINX_HMM),
    dict: join(engines.modelDir, POCKETSPHINX_DICT),
    lm: join(engines.modelDir, POCKETSPHINX_LM)
  }
}

export interface EngineCheck {
  ok: boolean
  /** what the engine says its version is, where it says */
  version?: string
  /** what to do when not ok: the apt-get line */
  fix?: string
  /** why not ok */
  error?: string
}

export interface SpeechEnginesReport {
  espeak: EngineCheck
  pocketsphinx: EngineCheck
  ffmpeg: EngineCheck
  sox: EngineCheck
}

function fixFor (pkg: string): string {
  return `apt-get install ${pkg}`
}

/** Runs `bin args` and returns its first output line matching `pattern`; throws SpeechEngineMissingError / SpeechEngineError */
async function versionLine (bin: string, args: string[], engine: string, pkg: string, pattern: RegExp, signal?: AbortSignal): Promise<string> {
  const result = await runProcess(bin, args, { engine, pkg, timeoutMs: CHECK_TIMEOUT_MS, maxOutputBytes: MAX_TEXT_OUTPUT_BYTES, ...(signal !== undefined ? { signal } : {}) })
  const text = result.stdout.toString('utf8') + '\n' + result.stderr
  const match = pattern.exec(text)
  if (result.code !== 0 || match === null) throw new SpeechEngineError(`${bin} did not run as ${engine} (exit ${String(result.code)})`)
  return match[1] ?? match[0]
}

/** espeak-ng runs; resolves its version */
export async function checkEspeak (engines: SpeechEngines, signal?: AbortSignal): Promise<string> {
  return await versionLine(engines.espeak, ['--version'], 'espeak-ng', ENGINE_PACKAGES.espeak, /eSpeak NG text-to-speech: (\S+)/, signal)
}

/**
 * pocketsphinx's CLI runs (without arguments it loads nothing and says it wants `-infile`, exit 1)
 * and the en-us model files are readable. Resolves a version-ish string ('5prealpha' CLI has no --version).
 */
export async function checkPocketsphinx (engines: SpeechEngines, signal?: AbortSignal): Promise<string> {
  const result = await runProcess(engines.pocketsphinx, [], {
    engine: 'pocketsphinx', pkg: ENGINE_PACKAGES.pocketsphinx, timeoutMs: CHECK_TIMEOUT_MS, maxOutputBytes: MAX_TEXT_OUTPUT_BYTES, ...(signal !== undefined ? { signal } : {})
  })
  if (!/-infile/.test(result.stderr + result.stdout.toString('utf8'))) {
    throw new SpeechEngineError(`${engines.pocketsphinx} did not run as pocketsphinx_continuous (exit ${String(result.code)})`)
  }
  const { hmm, dict, lm } = modelPaths(engines)
  for (const file of [join(hmm, 'mdef'), join(hmm, 'means'), dict, lm]) {
    try {
      await access(file, fsConstants.R_OK)
    } catch {
      throw new SpeechEngineMissingError('pocketsphinx', 'pocketsphinx-en-us', `the pocketsphinx en-us model (${file})`)
    }
  }
  return 'pocketsphinx_continuous'
}

export async function checkFfmpeg (engines: SpeechEngines, signal?: AbortSignal): Promise<string> {
  return await versionLine(engines.ffmpeg, ['-hide_banner', '-version'], 'ffmpeg', ENGINE_PACKAGES.ffmpeg, /ffmpeg version (\S+)/, signal)
}

export async function checkSox (engines: SpeechEngines, signal?: AbortSignal): Promise<string> {
  return await versionLine(engines.sox, ['--version'], 'sox', ENGINE_PACKAGES.sox, /SoX v(\S+)/, signal)
}

async function report (check: () => Promise<string>, pkg: string): Promise<EngineCheck> {
  try {
    return { ok: true, version: await check() }
  } catch (err) {
    const missing = err instanceof SpeechEngineMissingError
    return { ok: false, fix: fixFor(missing ? String(err.details?.package ?? pkg) : pkg), error: errorMessage(err) }
  }
}

/**
 * What `realm doctor` and the UI show about the offline speech engines. Never throws: an engine
 * that is missing or broken is `{ ok: false, fix: 'apt-get install …', error }`. espeak-ng serves
 * `tts`, pocketsphinx `stt`; ffmpeg decodes browser audio (webm/opus, ogg, mp3) and encodes mp3;
 * sox converts WAV when ffmpeg is absent.
 */
export async function checkSpeechEngines (init: Partial<SpeechEngines> = {}): Promise<SpeechEnginesReport> {
  const engines = resolveEngines(init)
  const [espeak, pocketsphinx, ffmpeg, sox] = await Promise.all([
    report(async () => await checkEspeak(engines), ENGINE_PACKAGES.espeak),
    report(async () => await checkPocketsphinx(engines), ENGINE_PACKAGES.pocketsphinx),
    report(async () => await checkFfmpeg(engines), ENGINE_PACKAGES.ffmpeg),
    report(async () => await checkSox(engines), ENGINE_PACKAGES.sox)
  ])
  return { espeak, pocketsphinx, ffmpeg, sox }
}
