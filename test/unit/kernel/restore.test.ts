import assert from 'node:assert/strict';
import type { WorldState } from '../../../protocol/kernel.js';
import { Kernel } from '../../../server/kernel/kernel.js';
import { digest, envelope, throwsKernel } from './helpers.js';

describe('kernel restore', () => {
  it('adopts a snapshot without copying it when asked, after the same shape checks', () => {
    const source = new Kernel();
    source.execute(envelope({ type: 'ScheduleAgentTask', agent: 'root', task: { description: 'x' } }));
    const snap = JSON.parse(JSON.stringify(source.snapshot())) as WorldState;
    const adopted = new Kernel({ state: snap, adopt: true });
    assert.equal(adopted.state, snap, 'the parsed snapshot is the live state');
    assert.equal(digest(adopted.state), digest(source.state));
    adopted.execute(envelope({ type: 'ScheduleAgentTask', agent: 'root', task: { description: 'y' } }));
    assert.equal(snap.tasks['root:A'].length, 2);

    const copied = new Kernel({ state: source.snapshot() });
    assert.notEqual(copied.state, source.state);
    throwsKernel(() => new Kernel({ state: { agents: {} } as unknown as WorldState, adopt: true }), 'InvalidOperation');
  });
});
