/**
 * The openai and sd adapters on a real mesh: their stand-ins' models reach another node; a
 * backend that goes down is benched and its models leave the mesh, and return with it.
 */
import assert from 'node:assert/strict'
import { Cleanup, addrOf, startTestNode } from '../helpers/nodes.js'
import { waitFor } from '../helpers/wait.js'
import { startA1111Standin, startOpenAIStandin, OPENAI_DEFAULT_MODELS } from '../standins/index.js'
import type { RealmNode } from '../../node/node.js'

async function models (node: RealmNode): Promise<Array<{ name: string, kinds: string[], peers: string[] }>> {
  return (await (await fetch(node.url + '/realm/models')).json()).models
}

describe('mesh: openai and sd workers', function () {
  this.timeout(60_000)
  const cleanup = new Cleanup()
  after(async () => { await cleanup.run() })

  it('advertise their models to the mesh; a backend that goes down leaves it, and comes back', async () => {
    const openai = await startOpenAIStandin()
    const sd = await startA1111Standin()
    cleanup.add(async () => { await openai.close(); await sd.close() })
    const a = cleanup.node(await startTestNode())
    const c = cleanup.node(await startTestNode({ bootstrap: [addrOf(a)], workers: [`openai=${openai.url}`, `sd=${sd.url}`] }))

    const sdNames = ['sd_xl_base_1.0', 'v1-5-pruned-emaonly']
    const expected = [...OPENAI_DEFAULT_MODELS, ...sdNames].sort()
    await waitFor(async () => JSON.stringify((await models(a)).map(m => m.name).sort()) === JSON.stringify(expected), 'every stand-in model on A')
    const byName = new Map((await models(a)).map(m => [m.name, m]))
    assert.deepEqual(byName.get('v1-5-pruned-emaonly')?.kinds, ['imagine'])
    assert.deepEqual(byName.get('whisper-1')?.kinds, ['transcribe'])
    assert.deepEqual(byName.get('tts-1')?.kinds, ['speak'])
    assert.deepEqual(byName.get('text-embedding-3-small')?.kinds, ['embed'])
    assert.deepEqual(byName.get('llama-3.2-1b-instruct')?.kinds, ['chat', 'generate'])
    assert.deepEqual(byName.get('llama-3.2-1b-instruct')?.peers, [c.peerId])

    sd.setMode('down')
    await waitFor(async () => JSON.stringify((await models(a)).map(m => m.name).sort()) === JSON.stringify([...OPENAI_DEFAULT_MODELS].sort()), 'sd models to leave A\'s view')
    const local = await (await fetch(c.url + '/realm/workers')).json()
    assert.equal(local.workers.find((w: any) => w.backend === 'sd').health.state, 'benched')
    assert.equal(local.workers.find((w: any) => w.backend === 'openai').health.state, 'ok')

    sd.setMode('ok')
    await waitFor(async () => JSON.stringify((await models(a)).map(m => m.name).sort()) === JSON.stringify(expected), 'sd models back on A')
  })
})
