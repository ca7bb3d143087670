import { MemoryEventLog } from '../../../server/store/memory-log.js';
import { describeEventLog } from './behaviour.js';

describeEventLog('memory', async () => {
  const log = new MemoryEventLog();
  return { log, cleanup: () => log.close() };
});
