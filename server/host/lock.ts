/**
 * One writer per data dir: `toka serve` and the CLI's writing commands hold `<data>/host.lock`
 * (created exclusively, holding the owner's pid). A lock whose pid is gone is stale and taken over.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { HostError } from './errors.js';

export class DataDirLock {
  private constructor(readonly path: string) {}

  static acquire(dataDir: string): DataDirLock {
    const path = join(dataDir, 'host.lock');
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, 'wx', 0o600);
        writeSync(fd, String(process.pid));
        closeSync(fd);
        return new DataDirLock(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const holder = DataDirLock.holder(dataDir);
        if (holder !== null) {
          throw new HostError('Conflict', `data dir ${dataDir} is in use by process ${holder} (is toka serve running?)`, {
            pid: holder,
          });
        }
        unlinkSync(path);
      }
    }
    throw new HostError('Conflict', `could not lock data dir ${dataDir}`);
  }

  /** The pid holding the data dir, or null when none does. */
  static holder(dataDir: string): number | null {
    try {
      const pid = Number.parseInt(readFileSync(join(dataDir, 'host.lock'), 'utf8'), 10);
      return Number.isInteger(pid) && isAlive(pid) ? pid : null;
    } catch {
      return null;
    }
  }

  release(): void {
    try {
      unlinkSync(this.path);
    } catch {
      // already gone: nothing to release
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
