import { recognize } from './node/speech/recognizer.js'
import { resolveEngines } from './node/speech/engines.js'
import { readFileSync } from 'node:fs'
const pcm = readFileSync('/tmp/sp/s.raw')
const seg = pcm.subarray(Math.round(0.82 * 16000) * 2, Math.round((0.82 + 2.46) * 16000) * 2)
for (const p of [pcm, seg]) console.log(await recognize(p, { type: 'keyword', phrase: 'computer', threshold: 1e-40 }, resolveEngines(), { timeoutMs: 10000, times: true }))
