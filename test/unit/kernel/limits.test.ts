import assert from 'node:assert/strict';
import { KERNEL_LIMITS, type OperationEnvelope } from '../../../protocol/kernel.js';
import type { OpcodeHandler } from '../../../server/kernel/kernel.js';
import { Kernel } from '../../../server/kernel/kernel.js';
import { claims, digest, envelope, throwsKernel } from './helpers.js';

function schedule(kernel: Kernel, description: string, agent = 'root'): void {
  kernel.execute(envelope({ type: 'ScheduleAgentTask', agent, task: { description } }));
}

function handler(opcode: string): OpcodeHandler {
  return { opcode, permission: 'agent:pause', eventTypes: [`${opcode}Done`], execute: () => [], apply: () => undefined };
}

describe('kernel limits', () => {
  it('task description: 4096 UTF-8 bytes accepted, 4097 rejected, blank invalid', () => {
    const kernel = new Kernel();
    schedule(kernel, 'é'.repeat(2048));
    throwsKernel(() => schedule(kernel, `${'é'.repeat(2048)}x`), 'LimitExceeded', { limit: 'taskDescriptionBytes', max: 4096, actual: 4097 });
    throwsKernel(() => schedule(kernel, ' \n\t'), 'InvalidOperation');
    assert.equal(kernel.state.tasks['root:A'].length, 1);
  });

  it('agent name: 256 characters accepted, 257 rejected, blank invalid', () => {
    const kernel = new Kernel();
    const spawn = (name: string) => kernel.execute(envelope({ type: 'SpawnSubAgent', parent: 'root', spec: { name } }));
    spawn('😀'.repeat(256));
    throwsKernel(() => spawn('a'.repeat(257)), 'LimitExceeded', { limit: 'agentNameChars', max: 256, actual: 257 });
    throwsKernel(() => spawn('   '), 'InvalidOperation');
  });

  it('observation: 1 MiB JSON accepted, one byte more rejected', () => {
    const kernel = new Kernel();
    const emit = (data: unknown) => kernel.execute(envelope({ type: 'EmitObservation', agent: 'root', data }));
    const max = KERNEL_LIMITS.observationBytes;
    emit('a'.repeat(max - 2)); // plus two quotes
    throwsKernel(() => emit('a'.repeat(max - 1)), 'LimitExceeded', { limit: 'observationBytes', max, actual: max + 1 });
    assert.equal(kernel.state.observations['root:A'], 1);
  });

  it('observation nesting is bounded', () => {
    const kernel = new Kernel();
    let deep: unknown = 1;
    for (let i = 0; i < 65; i++) deep = [deep];
    throwsKernel(() => kernel.execute(envelope({ type: 'EmitObservation', agent: 'root', data: deep })), 'LimitExceeded', { limit: 'jsonDepth' });
  });

  it('10,000 queued tasks per agent; the 10,001st is rejected', () => {
    const kernel = new Kernel();
    for (let i = 0; i < KERNEL_LIMITS.queuedTasksPerAgent; i++) schedule(kernel, `t${i}`);
    throwsKernel(() => schedule(kernel, 'one too many'), 'LimitExceeded', { limit: 'queuedTasksPerAgent', max: 10_000, actual: 10_001 });
    assert.equal(kernel.state.tasks['root:A'].length, 10_000);
  });

  it('grant label and reasons are bounded', () => {
    const kernel = new Kernel();
    throwsKernel(
      () => kernel.execute(envelope({ type: 'CreateGrant', subject: 'bob', permissions: ['state:read'], label: 'l'.repeat(257) })),
      'LimitExceeded', { limit: 'grantLabelChars', max: 256 },
    );
    throwsKernel(() => kernel.execute(envelope({ type: 'RevokeToken', jti: 'j', exp: 1, reason: 'r'.repeat(1025) })), 'LimitExceeded', { limit: 'reasonChars', max: 1024 });
    throwsKernel(() => kernel.execute(envelope({ type: 'CreateGrant', subject: 's'.repeat(257), permissions: ['state:read'] })), 'LimitExceeded', { limit: 'subjectChars' });
    kernel.execute(envelope({ type: 'RevokeToken', jti: 'j', exp: 1, reason: 'r'.repeat(1024) }));
  });

  it('envelope ids are bounded by ID_BUDGET', () => {
    const kernel = new Kernel();
    const env: OperationEnvelope = envelope({ type: 'RevokeToken', jti: 'j', exp: 1 }, claims(), { ids: ['a', 'b', 'c', 'd', 'e'] });
    throwsKernel(() => kernel.execute(env), 'LimitExceeded', { limit: 'ids', max: 4, actual: 5 });
  });

  it('the handler registry holds at most 64 handlers, core included', () => {
    const kernel = new Kernel();
    const room = KERNEL_LIMITS.registeredHandlers - kernel.handlers().length;
    for (let i = 0; i < room; i++) kernel.register(handler(`Op${i}`));
    throwsKernel(() => kernel.register(handler('OneMore')), 'LimitExceeded', { limit: 'registeredHandlers', max: 64, actual: 65 });
    assert.equal(kernel.handlers().length, 64);
  });

  it('a rejected operation leaves the state digest unchanged', () => {
    const kernel = new Kernel();
    schedule(kernel, 'first');
    const before = digest(kernel.state);
    throwsKernel(() => schedule(kernel, 'x'.repeat(5000)), 'LimitExceeded');
    throwsKernel(() => kernel.execute(envelope({ type: 'SpawnSubAgent', parent: 'root:B', spec: { name: 'x' } })), 'UnknownEntity');
    assert.equal(digest(kernel.state), before);
  });
});
