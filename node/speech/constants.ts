/** Defaults of the offline speech engines (see SpeechWorkerInit, SpeechSessionInit in index.ts) */

/** Debian packages that provide each engine: what `realm doctor` and benched workers tell you to install */
export const ENGINE_PACKAGES = {
  espeak: 'espeak-ng',
  pocketsphinx: 'pocketsphinx pocketsphinx-en-us',
  ffmpeg: 'ffmpeg',
  sox: 'sox'
} as const

/** Binaries looked up on PATH */
export const ESPEAK_BIN = 'espeak-ng'
export const POCKETSPHINX_BIN = 'pocketsphinx_continuous'
export const FFMPEG_BIN = 'ffmpeg'
export const SOX_BIN = 'sox'

/** Where `pocketsphinx-en-us` puts the US English model */
export const POCKETSPHINX_MODEL_DIR = '/usr/share/pocketsphinx/model/en-us'
/** Model files under POCKETSPHINX_MODEL_DIR: acoustic model dir, pronouncing dictionary, language model */
export const POCKETSPHINX_HMM = 'en-us'
export const POCKETSPHINX_DICT = 'cmudict-en-us.dict'
export const POCKETSPHINX_LM = 'en-us.lm.bin'

/** The model a pocketsphinx worker advertises */
export const STT_MODEL = 'pocketsphinx:en-us'
/** espeak-ng voices advertised as `espeak-ng:<voice>` when installed (any installed voice may still be asked for) */
export const TTS_ADVERTISED_VOICES = ['en', 'en-us', 'en-gb', 'de', 'es', 'fr', 'it', 'nl', 'pt', 'ru'] as const
/** Voice of a speak task whose model names none */
export const TTS_DEFAULT_VOICE = 'en'
/** espeak-ng's own default rate, words per minute: speed 1 */
export const TTS_BASE_WPM = 175
/** espeak-ng accepts 80…450 wpm; speeds outside are clamped */
export const TTS_MIN_WPM = 80
export const TTS_MAX_WPM = 450

/** Sample rate pocketsphinx's en-us acoustic model was trained on; all audio is decoded to it */
export const STT_SAMPLE_RATE = 16_000
/** 16-bit mono PCM */
export const STT_BYTES_PER_SECOND = STT_SAMPLE_RATE * 2

/** Largest audio a transcribe task may send, in bytes (decoded from base64) */
export const MAX_AUDIO_BYTES = 10 * 1024 * 1024
/** Longest audio transcribed, in seconds (a 10 MiB opus clip could hold hours) */
export const MAX_AUDIO_SECONDS = 600
/** Longest text a speak task may send, in characters (SpeakInputSchema's limit) */
export const MAX_SPEAK_CHARS = 20_000
/**
 * Largest audio a speak task returns, in bytes: what fits a task frame's base64 payload
 * (protocol/task.ts MAX_BASE64_CHARS = 16 Mi characters → 12 MiB); ~4.7 min of espeak-ng WAV
 */
export const MAX_SPEAK_OUTPUT_BYTES = 12 * 1024 * 1024
/** Most bytes read from an engine's stdout that is not audio (hypotheses, versions) */
export const MAX_TEXT_OUTPUT_BYTES = 1024 * 1024
/** Tail of an engine's stderr kept for error messages */
export const MAX_STDERR_BYTES = 8 * 1024

/** A speak run's engines must finish within this (espeak-ng speaks ~100× faster than real time) */
export const TTS_TIMEOUT_MS = 60_000
/** A transcribe run may take this long plus STT_TIMEOUT_PER_AUDIO_SECOND_MS per second of audio */
export const STT_TIMEOUT_BASE_MS = 30_000
/** Room for decoding near real time on a busy machine (loading the language model alone took 1.5–7 s here) */
export const STT_TIMEOUT_PER_AUDIO_SECOND_MS = 2_000
/** Time an engine gets to exit after SIGTERM before SIGKILL */
export const KILL_GRACE_MS = 500
/** Engine checks (`--version`, help output) must answer within this */
export const CHECK_TIMEOUT_MS = 5_000

/**
 * Keyword-spotting threshold of the wake word. Measured here (with DITHER_ARGS) on 72
 * espeak-ng clips containing "computer" and 72 without (6 voices × 2 speeds; 12 of the 72 are
 * the near-miss "the committee will compute the results"):
 *   1e-35: caught 20/72, false alarms 0/60 ordinary + 0/12 near-miss
 *   1e-40: caught 25/72 (all 6 in espeak-ng's default voice), 0/60 + 3/12
 *   1e-45: caught 43/72, 1/60 + 4/12
 *   1e-50: caught 53/72, 3/60 + 6/12
 * A wake word is checked against every utterance in the room, so false alarms add up over hours
 * while a miss costs saying it again: the default favours precision. The score is fragile near
 * digital silence: the default voice's clip with 1 s of ±1-LSB noise before it was missed even
 * at 1e-50 in 7 of 8 noise draws, while with pink room noise at −50…−40 dBFS it was caught at 1e-40.
 */
export const KWS_THRESHOLD = 1e-40
/**
 * Wider search beams than pocketsphinx's defaults (1e-48/1e-48/7e-29) for grammar decoding: on
 * the 72 clips without "computer" a 6-phrase grammar went from 59/72 to 69/72 exact (no wrong
 * phrase in espeak-ng's default voice), at ~0.2 s CPU per clip.
 */
export const GRAMMAR_BEAMS = ['-beam', '1e-80', '-pbeam', '1e-80', '-wbeam', '1e-60'] as const
/**
 * Half-bit noise added before feature extraction, from a fixed seed (same audio, same answer).
 * Digital silence (synthesised speech, padding, a muted microphone) throws the spotter off: on
 * espeak-ng's "computer chat what is the realm" it fired only from 1e-50 without dither, from
 * 1e-35 with it; grammar decoding went from 65/72 to 69/72.
 */
export const DITHER_ARGS = ['-dither', 'yes', '-seed', '1'] as const
/** Silence put around a clip before decoding: pocketsphinx's VAD and the spotter miss speech that starts at sample 0 */
export const PAD_BEFORE_MS = 300
export const PAD_AFTER_MS = 500
/** Most phrases a grammar takes (TranscribeInputSchema's limit) */
export const MAX_PHRASES = 200
/** Longest phrase, in characters (TranscribeInputSchema's limit) */
export const MAX_PHRASE_CHARS = 200

/** SpeechSession: the wake word */
export const WAKE_WORD = 'computer'
/** SpeechSession: commands that may follow the wake word (RentAHal's modes) */
export const DEFAULT_COMMANDS = ['chat', 'vision', 'imagine', 'speech'] as const
/** SpeechSession: silence that ends an utterance */
export const END_SILENCE_MS = 700
/** SpeechSession: an utterance is cut here even if the speaker does not pause */
export const MAX_UTTERANCE_MS = 15_000
/** SpeechSession: audio kept before the detected start of speech (its onset is quiet) */
export const PRE_ROLL_MS = 300
/** SpeechSession: speech shorter than this is a click, not an utterance */
export const MIN_SPEECH_MS = 100
/**
 * SpeechSession: speech after the wake word in the same utterance that counts as the command
 * said in one breath. The spotter puts the keyword's end ~0.1 s before the word's audible end;
 * a command word lasts 0.25 s or more.
 */
export const FOLLOW_ON_MIN_SPEECH_MS = 200
/** SpeechSession: awake with nothing said for this long → asleep again */
export const AWAKE_TIMEOUT_MS = 8_000
/** SpeechSession: a frame is speech when this many dB above the noise floor… */
export const VAD_MARGIN_DB = 12
/** …and above this absolute level (dBFS), so a silent room's hiss is never speech */
export const VAD_MIN_DBFS = -50
/** SpeechSession: VAD frame length */
export const VAD_FRAME_MS = 20
/** SpeechSession: most decodes queued before further utterances are dropped (a slow machine must not grow memory) */
export const MAX_PENDING_UTTERANCES = 4
