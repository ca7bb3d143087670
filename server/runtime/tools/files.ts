/**
 * Built-in file tools, confined to `ctx.workspace` (see workspace.ts for the confinement rules):
 * `fs_read`, `fs_list`, `fs_search` (permission `tool:fs-read`, read_only) and `fs_write` (`tool:fs-write`,
 * idempotent for overwrite). Text is UTF-8. Symlinks inside the workspace are followed when named directly;
 * `fs_list` and `fs_search` show them but never walk through them.
 */
import { constants, promises as fsp } from 'node:fs';
import { join, relative } from 'node:path';
import { cancelled, limitExceeded, ToolError } from './errors.js';
import type { Tool } from './types.js';
import { isInside, openInWorkspace, resolveInWorkspace, type WorkspacePath } from './workspace.js';

const PATH_SCHEMA = { type: 'string', minLength: 1, maxLength: 4096, description: 'Path relative to the workspace root.' };
/** Longest line shown in a search result; longer lines are cut with `…`. */
const SEARCH_LINE_CHARS = 240;
/** A file whose first bytes contain a NUL is treated as binary and not searched. */
const BINARY_SNIFF_BYTES = 8192;

interface ReadArgs { path: string; offset?: number; length?: number }
interface WriteArgs { path: string; content: string; mode?: 'overwrite' | 'append' | 'create' }
interface ListArgs { path?: string; recursive?: boolean }
interface SearchArgs { query: string; path?: string; ignoreCase?: boolean }

export const fsRead: Tool = {
  manifest: {
    name: 'fs_read',
    description:
      'Read a UTF-8 text file of the workspace. Files larger than the read limit must be read in parts with offset and length (bytes).',
    inputSchema: {
      type: 'object',
      properties: {
        path: PATH_SCHEMA,
        offset: { type: 'integer', minimum: 0, description: 'First byte to read (default 0).' },
        length: { type: 'integer', minimum: 1, description: 'Bytes to read (default: to the end of the file).' },
      },
      required: ['path'],
      additionalProperties: false,
    },
    sideEffect: 'read_only',
    permission: 'tool:fs-read',
  },
  async call(raw, ctx) {
    const args = raw as ReadArgs;
    const p = await resolveInWorkspace(ctx.workspace, args.path);
    const { handle, stat } = await openInWorkspace(p, args.path, constants.O_RDONLY);
    try {
      const offset = Math.min(args.offset ?? 0, stat.size);
      const length = args.length ?? stat.size - offset;
      const max = ctx.limits.fileReadBytes;
      if (length > max) {
        throw limitExceeded('fileReadBytes', max, `reading ${length} bytes of ${JSON.stringify(p.rel)} (size ${stat.size}) is too much; read it in parts with offset and length`);
      }
      const buf = Buffer.alloc(Math.min(length, stat.size - offset));
      const { bytesRead } = await handle.read(buf, 0, buf.length, offset);
      return { content: buf.subarray(0, bytesRead).toString('utf8'), isError: false, data: { path: p.rel, size: stat.size, offset, bytes: bytesRead } };
    } finally {
      await handle.close();
    }
  },
};

export const fsWrite: Tool = {
  manifest: {
    name: 'fs_write',
    description:
      'Write a UTF-8 text file of the workspace, creating missing parent directories. mode: overwrite (default), append, or create (fails if the file exists).',
    inputSchema: {
      type: 'object',
      properties: {
        path: PATH_SCHEMA,
        content: { type: 'string' },
        mode: { enum: ['overwrite', 'append', 'create'] },
      },
      required: ['path', 'content'],
      additionalProperties: false,
    },
    sideEffect: 'idempotent',
    permission: 'tool:fs-write',
  },
  async call(raw, ctx) {
    const args = raw as WriteArgs;
    const mode = args.mode ?? 'overwrite';
    const bytes = Buffer.from(args.content, 'utf8');
    const max = ctx.limits.fileWriteBytes;
    if (bytes.length > max) throw limitExceeded('fileWriteBytes', max, `content of ${bytes.length} bytes is too large`);
    let p = await resolveInWorkspace(ctx.workspace, args.path);
    if (!p.exists) p = await makeParents(p, args.path, ctx.workspace);
    let flags = constants.O_WRONLY | constants.O_CREAT;
    if (mode === 'create') flags |= constants.O_EXCL;
    if (mode === 'append') flags |= constants.O_APPEND;
    const { handle, stat } = await openInWorkspace(p, args.path, flags);
    try {
      if (mode === 'append' && stat.size + bytes.length > max) {
        throw limitExceeded('fileWriteBytes', max, `appending ${bytes.length} bytes to ${JSON.stringify(p.rel)} (size ${stat.size}) would make it too large`);
      }
      if (mode !== 'append') await handle.truncate(0);
      await handle.write(bytes, 0, bytes.length, mode === 'append' ? null : 0);
      const size = mode === 'append' ? stat.size + bytes.length : bytes.length;
      return { content: `wrote ${bytes.length} bytes to ${p.rel}`, isError: false, data: { path: p.rel, bytes: bytes.length, size } };
    } finally {
      await handle.close();
    }
  },
};

/** Creates the missing parent directories of `p`, then resolves the path again (the new parents must be inside). */
async function makeParents(p: WorkspacePath, userPath: string, workspace: string): Promise<WorkspacePath> {
  try {
    await fsp.mkdir(join(p.abs, '..'), { recursive: true, mode: 0o755 });
  } catch (err) {
    throw new ToolError('Failed', `cannot create the directories of ${JSON.stringify(p.rel)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return resolveInWorkspace(workspace, userPath);
}

export const fsList: Tool = {
  manifest: {
    name: 'fs_list',
    description: 'List a directory of the workspace (recursively if asked). Directories end with "/", symlinks are shown with "@" and not followed.',
    inputSchema: {
      type: 'object',
      properties: { path: PATH_SCHEMA, recursive: { type: 'boolean' } },
      additionalProperties: false,
    },
    sideEffect: 'read_only',
    permission: 'tool:fs-read',
  },
  async call(raw, ctx) {
    const args = raw as ListArgs;
    const p = await resolveInWorkspace(ctx.workspace, args.path ?? '.');
    const max = ctx.limits.listEntries;
    const lines: string[] = [];
    let truncated = false;
    for await (const entry of walk(p, args.path ?? '.', args.recursive === true, ctx.signal)) {
      if (lines.length === max) {
        truncated = true;
        break;
      }
      lines.push(entry.kind === 'dir' ? `${entry.rel}/` : entry.kind === 'link' ? `${entry.rel}@` : entry.rel);
    }
    if (truncated) lines.push(`[list truncated at ${max} entries (limit listEntries)]`);
    return { content: lines.join('\n'), isError: false, data: { path: p.rel, entries: truncated ? max : lines.length, truncated } };
  },
};

export const fsSearch: Tool = {
  manifest: {
    name: 'fs_search',
    description:
      'Search the text files under a directory of the workspace for a literal string; returns "path:line: text" for each matching line. Binary files, files over the read limit and symlinks are skipped.',
    inputSchema: {
      type: 'object',
      properties: {
        query: { type: 'string', minLength: 1, maxLength: 1000 },
        path: PATH_SCHEMA,
        ignoreCase: { type: 'boolean' },
      },
      required: ['query'],
      additionalProperties: false,
    },
    sideEffect: 'read_only',
    permission: 'tool:fs-read',
  },
  async call(raw, ctx) {
    const args = raw as SearchArgs;
    const p = await resolveInWorkspace(ctx.workspace, args.path ?? '.');
    const { searchMatches, searchBytes, searchEntries, fileReadBytes } = ctx.limits;
    const needle = args.ignoreCase ? args.query.toLowerCase() : args.query;
    const matches: string[] = [];
    let scanned = 0;
    let skipped = 0;
    let visited = 0;
    let stop: string | undefined;
    const files = p.exists && (await fsp.stat(p.abs)).isFile() ? single(p) : walk(p, args.path ?? '.', true, ctx.signal);
    outer: for await (const entry of files) {
      if (ctx.signal.aborted) throw cancelled();
      if (++visited > searchEntries) {
        stop = `[search stopped after ${searchEntries} directory entries (limit searchEntries)]`;
        break;
      }
      if (entry.kind !== 'file') continue;
      const text = await readForSearch(p.root, entry.abs, entry.rel, fileReadBytes);
      if (text === undefined) {
        skipped++;
        continue;
      }
      scanned += Buffer.byteLength(text);
      const lines = text.split('\n');
      for (let i = 0; i < lines.length; i++) {
        const line = lines[i];
        if (!(args.ignoreCase ? line.toLowerCase() : line).includes(needle)) continue;
        if (matches.length === searchMatches) {
          stop = `[search stopped at ${searchMatches} matches (limit searchMatches)]`;
          break outer;
        }
        const shown = line.length > SEARCH_LINE_CHARS ? `${line.slice(0, SEARCH_LINE_CHARS)}…` : line;
        matches.push(`${entry.rel}:${i + 1}: ${shown}`);
      }
      if (scanned >= searchBytes) {
        stop = `[search stopped after reading ${scanned} bytes (limit searchBytes = ${searchBytes})]`;
        break;
      }
    }
    const content = [...matches, ...(stop ? [stop] : []), ...(skipped ? [`[${skipped} files skipped: binary, too large, or not readable]`] : [])];
    return {
      content: content.length ? content.join('\n') : 'no matches',
      isError: false,
      data: { matches: matches.length, truncated: stop !== undefined, skippedFiles: skipped },
    };
  },
};

/** The text of a file for searching, or undefined when it is binary, over `maxBytes`, linked or unreadable. */
async function readForSearch(root: string, abs: string, rel: string, maxBytes: number): Promise<string | undefined> {
  let opened;
  try {
    opened = await openInWorkspace({ root, abs, rel, exists: true }, rel, constants.O_RDONLY);
  } catch (err) {
    if (err instanceof ToolError) return undefined;
    throw err;
  }
  const { handle, stat } = opened;
  try {
    if (stat.size > maxBytes) return undefined;
    const buf = Buffer.alloc(stat.size);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    const data = buf.subarray(0, bytesRead);
    if (data.subarray(0, BINARY_SNIFF_BYTES).includes(0)) return undefined;
    return data.toString('utf8');
  } finally {
    await handle.close();
  }
}

interface WalkEntry { rel: string; abs: string; kind: 'file' | 'dir' | 'link' | 'other' }

async function* single(p: WorkspacePath): AsyncGenerator<WalkEntry> {
  yield { rel: p.rel, abs: p.abs, kind: 'file' };
}

/**
 * Entries under directory `p`, breadth first, streamed (a huge directory is never read whole). Each directory
 * is re-checked to be inside the root before it is opened; symlinks are reported, never followed.
 */
async function* walk(p: WorkspacePath, userPath: string, recursive: boolean, signal: AbortSignal): AsyncGenerator<WalkEntry> {
  if (!p.exists) throw new ToolError('NotFound', `no directory ${JSON.stringify(p.rel)} in the workspace`);
  const queue = [p.abs];
  while (queue.length > 0) {
    const dir = queue.shift() as string;
    const real = await fsp.realpath(dir);
    if (!isInside(p.root, real)) throw new ToolError('PathEscape', `path ${JSON.stringify(userPath)} is refused: a directory under it resolves outside the workspace`);
    let handle;
    try {
      handle = await fsp.opendir(real, { bufferSize: 64 });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTDIR') throw new ToolError('Failed', `${JSON.stringify(relative(p.root, real) || '.')} is not a directory`);
      throw new ToolError('Failed', `cannot list ${JSON.stringify(relative(p.root, real) || '.')}: ${code ?? (err as Error).message}`);
    }
    for await (const d of handle) {
      if (signal.aborted) throw cancelled();
      const abs = join(real, d.name);
      const kind = d.isDirectory() ? 'dir' : d.isFile() ? 'file' : d.isSymbolicLink() ? 'link' : 'other';
      yield { rel: relative(p.root, abs), abs, kind };
      if (kind === 'dir' && recursive) queue.push(abs);
    }
  }
}

/** The four file tools. */
export const fileTools: readonly Tool[] = [fsRead, fsWrite, fsList, fsSearch];
