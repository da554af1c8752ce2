import assert from 'node:assert/strict'
import { FairQueue, InvalidQueueOptionError, pump, SlotNotHeldError, Slots, type QueueEntry } from '../../node/queue/index.js'

describe('slots', () => {
  it('hands out up to limit slots, default 1', () => {
    const one = new Slots()
    assert.equal(one.limit, 1)
    assert.equal(one.tryAcquire(), true)
    assert.equal(one.tryAcquire(), false)
    one.release()
    assert.equal(one.inFlight, 0)

    const slots = new Slots(3)
    assert.deepEqual([slots.tryAcquire(), slots.tryAcquire(), slots.tryAcquire(), slots.tryAcquire()], [true, true, true, false])
    assert.equal(slots.inFlight, 3)
    assert.equal(slots.available, 0)
    slots.release()
    assert.equal(slots.available, 1)
    assert.equal(slots.tryAcquire(), true)
  })

  it('refuses a release with no slot held', () => {
    const slots = new Slots(2)
    assert.throws(() => slots.release(), (err: unknown) => err instanceof SlotNotHeldError && err.code === 'SLOT_NOT_HELD')
    slots.tryAcquire()
    slots.release()
    assert.throws(() => slots.release(), SlotNotHeldError)
    assert.equal(slots.inFlight, 0)
  })

  it('changes its limit at run time: lowering lets running tasks finish, 0 pauses', () => {
    const slots = new Slots(3)
    slots.tryAcquire()
    slots.tryAcquire()
    slots.tryAcquire()
    slots.limit = 1
    assert.equal(slots.available, 0)
    slots.release()
    assert.equal(slots.tryAcquire(), false)
    slots.release()
    assert.equal(slots.inFlight, 1)
    assert.equal(slots.tryAcquire(), false)
    slots.release()
    assert.equal(slots.tryAcquire(), true)
    slots.limit = 0
    slots.release()
    assert.equal(slots.tryAcquire(), false)
    slots.limit = 2
    assert.equal(slots.tryAcquire(), true)
    assert.throws(() => { slots.limit = 1.5 }, InvalidQueueOptionError)
    assert.throws(() => new Slots(-1), InvalidQueueOptionError)
  })
})

describe('pump', () => {
  it('starts waiting tasks in fair order while slots are free', () => {
    const queue = new FairQueue<string>()
    const slots = new Slots(2)
    const started: string[] = []
    const start = (entry: QueueEntry<string>): void => { started.push(entry.item) }
    for (const [item, requester] of [['A1', 'A'], ['A2', 'A'], ['A3', 'A'], ['B1', 'B']]) queue.enqueue(item, requester)
    assert.equal(pump(queue, slots, start), 2)
    assert.deepEqual(started, ['A1', 'B1'])
    assert.equal(pump(queue, slots, start), 0)
    slots.release()
    assert.equal(pump(queue, slots, start), 1)
    slots.limit = 3
    assert.equal(pump(queue, slots, start), 1)
    assert.deepEqual(started, ['A1', 'B1', 'A2', 'A3'])
    assert.equal(slots.inFlight, 3)
    assert.equal(pump(queue, slots, start), 0)
    assert.equal(slots.inFlight, 3)
  })

  it('gives the slot back when start throws', () => {
    const queue = new FairQueue<string>()
    const slots = new Slots(1)
    queue.enqueue('A1', 'A')
    assert.throws(() => pump(queue, slots, () => { throw new Error('cannot start') }), /cannot start/)
    assert.equal(slots.inFlight, 0)
    assert.equal(queue.size, 0)
  })
})
