import assert from 'node:assert/strict';
import { AuthError } from '../../../server/auth/errors.js';
import { RateLimiter } from '../../../server/auth/rate-limit.js';
import { Clock } from './helpers.js';

function limited(fn: () => void): AuthError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof AuthError);
    assert.equal(err.code, 'ERR_RATE_LIMITED');
    return err;
  }
  assert.fail('expected ERR_RATE_LIMITED');
}

describe('auth/rate-limit', () => {
  it('admits a burst, then refuses with the exact retryAfterMs', () => {
    const clock = new Clock();
    const rl = new RateLimiter({ ratePerSec: 2, burst: 2, now: clock.now });
    rl.take('alice');
    rl.take('alice');
    assert.equal(limited(() => rl.take('alice')).retryAfterMs, 500);
    clock.advance(250);
    assert.equal(limited(() => rl.take('alice')).retryAfterMs, 250);
  });

  it('refills with elapsed time', () => {
    const clock = new Clock();
    const rl = new RateLimiter({ ratePerSec: 2, burst: 2, now: clock.now });
    rl.take('alice');
    rl.take('alice');
    const { retryAfterMs } = limited(() => rl.take('alice'));
    clock.advance(retryAfterMs ?? 0);
    rl.take('alice');
    limited(() => rl.take('alice'));
  });

  it('refills no further than the burst', () => {
    const clock = new Clock();
    const rl = new RateLimiter({ ratePerSec: 10, burst: 3, now: clock.now });
    rl.take('alice');
    clock.advance(60_000);
    rl.take('alice');
    rl.take('alice');
    rl.take('alice');
    assert.equal(limited(() => rl.take('alice')).retryAfterMs, 100);
  });

  it('charges cost and computes retryAfterMs for it', () => {
    const clock = new Clock();
    const rl = new RateLimiter({ ratePerSec: 4, burst: 4, now: clock.now });
    rl.take('alice', 3);
    assert.equal(limited(() => rl.take('alice', 3)).retryAfterMs, 500);
    rl.take('alice', 1);
  });

  it('rounds fractional waits up to whole milliseconds', () => {
    const clock = new Clock();
    const rl = new RateLimiter({ ratePerSec: 3, burst: 1, now: clock.now });
    rl.take('alice');
    const wait = limited(() => rl.take('alice')).retryAfterMs ?? 0;
    assert.equal(wait, 334);
    clock.advance(wait - 1);
    limited(() => rl.take('alice'));
    clock.advance(1);
    rl.take('alice');
  });

  it('keeps subjects apart', () => {
    const clock = new Clock();
    const rl = new RateLimiter({ ratePerSec: 1, burst: 1, now: clock.now });
    rl.take('alice');
    rl.take('bob');
    limited(() => rl.take('alice'));
  });

  it('tracks a bounded number of subjects, forgetting the least recently used', () => {
    const clock = new Clock();
    const rl = new RateLimiter({ ratePerSec: 1, burst: 1, now: clock.now, maxSubjects: 2 });
    rl.take('a');
    rl.take('b');
    limited(() => rl.take('a')); // touches a: b is now least recently used
    rl.take('c'); // evicts b
    assert.equal(rl.trackedSubjects(), 2);
    limited(() => rl.take('a'));
    limited(() => rl.take('c'));
    rl.take('b'); // b was forgotten: a full bucket again
  });

  it('refuses a cost larger than the burst as a programming error', () => {
    const rl = new RateLimiter({ ratePerSec: 1, burst: 2 });
    assert.throws(() => rl.take('alice', 3), RangeError);
  });

  it('validates its options', () => {
    assert.throws(() => new RateLimiter({ ratePerSec: 0, burst: 1 }), RangeError);
    assert.throws(() => new RateLimiter({ ratePerSec: 1, burst: 0 }), RangeError);
    assert.throws(() => new RateLimiter({ ratePerSec: 1, burst: 1, maxSubjects: 0 }), RangeError);
  });
});
