/**
 * Confinement of file access to an agent's workspace root.
 *
 * A path is accepted only if it is relative, has no `..` segment, and resolves (symlinks followed, through the
 * deepest part that exists) to a place inside the real workspace root. Files are then opened with
 * `O_NOFOLLOW` (a symlink as the last component is refused), and the opened descriptor is checked again: the
 * path's realpath must still be inside the root and name the very inode that was opened (so a directory
 * swapped for a symlink between check and open is caught), and a regular file must have exactly one link (a
 * hard link could be the same file as one outside the workspace).
 */
import { constants, promises as fsp, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { ToolError } from './errors.js';

/** Longest path argument accepted, in characters. */
export const MAX_PATH_CHARS = 4096;

export interface WorkspacePath {
  /** Real path of the workspace root. */
  root: string;
  /** Absolute path inside `root`: the realpath of the part that exists, plus the part that does not. */
  abs: string;
  /** `abs` relative to `root` (`.` for the root itself), for messages. */
  rel: string;
  /** True when the whole path exists. */
  exists: boolean;
}

function escape(userPath: string, why: string): ToolError {
  return new ToolError('PathEscape', `path ${JSON.stringify(userPath.slice(0, 200))} is refused: ${why}`, { path: userPath.slice(0, 200) });
}

export function isInside(root: string, p: string): boolean {
  return p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);
}

/** Real path of the workspace root; `Failed` when it is missing or not a directory. */
export async function workspaceRoot(workspace: string): Promise<string> {
  if (!isAbsolute(workspace)) throw new ToolError('Failed', 'the workspace root is not an absolute path');
  try {
    const root = await fsp.realpath(workspace);
    if (!(await fsp.stat(root)).isDirectory()) throw new Error('not a directory');
    return root;
  } catch (err) {
    throw new ToolError('Failed', `the workspace root is unusable: ${(err as Error).message}`);
  }
}

/** Resolves a user-supplied relative path inside the workspace, or throws `PathEscape`. */
export async function resolveInWorkspace(workspace: string, userPath: string): Promise<WorkspacePath> {
  if (typeof userPath !== 'string' || userPath.length === 0) throw escape(String(userPath), 'empty path');
  if (userPath.length > MAX_PATH_CHARS) throw escape(userPath, `longer than ${MAX_PATH_CHARS} characters`);
  if (userPath.includes('\0')) throw escape(userPath, 'contains a NUL byte');
  if (isAbsolute(userPath)) throw escape(userPath, 'absolute paths are not allowed; use a path relative to the workspace');
  if (userPath.split(/[\\/]/).includes('..')) throw escape(userPath, '".." segments are not allowed');
  const root = await workspaceRoot(workspace);
  const target = join(root, userPath);
  let existing = target;
  const missing: string[] = [];
  for (;;) {
    try {
      const real = await fsp.realpath(existing);
      if (!isInside(root, real)) throw escape(userPath, 'it resolves outside the workspace through a symlink');
      const abs = missing.length === 0 ? real : join(real, ...missing.reverse());
      return { root, abs, rel: relative(root, abs) || '.', exists: missing.length === 0 };
    } catch (err) {
      if (err instanceof ToolError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ELOOP') throw escape(userPath, 'symlink loop');
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new ToolError('Failed', `cannot resolve the path: ${code ?? (err as Error).message}`);
      // A dangling symlink exists (lstat) but does not resolve: where it points is not ours to create.
      if (await lstatOrUndefined(existing)) throw escape(userPath, 'it is a symlink to a missing target');
      const parent = dirname(existing);
      if (parent === existing || !isInside(root, parent)) throw escape(userPath, 'no part of it exists inside the workspace');
      missing.push(existing.slice(parent.length + (parent.endsWith(sep) ? 0 : 1)));
      existing = parent;
    }
  }
}

async function lstatOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await fsp.lstat(p);
  } catch {
    return undefined;
  }
}

/**
 * Opens a regular file inside the workspace without following a final symlink, then proves the descriptor is
 * the file the checked path names (still inside the root) and has no other hard link. `flags` must not
 * contain `O_TRUNC` (truncation would happen before the checks): truncate the returned handle instead.
 */
export async function openInWorkspace(p: WorkspacePath, userPath: string, flags: number, mode = 0o644): Promise<{ handle: FileHandle; stat: Stats }> {
  let handle: FileHandle;
  try {
    handle = await fsp.open(p.abs, flags | constants.O_NOFOLLOW | constants.O_NONBLOCK, mode);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw escape(userPath, 'it is a symlink');
    if (code === 'ENOENT') throw new ToolError('NotFound', `no file ${JSON.stringify(p.rel)} in the workspace`);
    if (code === 'EEXIST') throw new ToolError('Failed', `${JSON.stringify(p.rel)} already exists`);
    if (code === 'EISDIR') throw new ToolError('Failed', `${JSON.stringify(p.rel)} is a directory`);
    throw new ToolError('Failed', `cannot open ${JSON.stringify(p.rel)}: ${code ?? (err as Error).message}`);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new ToolError('Failed', `${JSON.stringify(p.rel)} is not a regular file`);
    if (stat.nlink > 1) throw escape(userPath, `the file has ${stat.nlink} hard links; a file linked from elsewhere may be outside the workspace`);
    let now: Stats;
    try {
      const real = await fsp.realpath(p.abs);
      if (!isInside(p.root, real)) throw escape(userPath, 'it moved outside the workspace while being opened');
      now = await fsp.stat(real);
    } catch (err) {
      if (err instanceof ToolError) throw err;
      throw escape(userPath, 'it changed while being opened');
    }
    if (now.dev !== stat.dev || now.ino !== stat.ino) throw escape(userPath, 'it changed while being opened');
    return { handle, stat };
  } catch (err) {
    await handle.close();
    throw err;
  }
}
