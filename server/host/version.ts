/** Host software version (kept in step with package.json by the release process). */
export const TOKA_VERSION = '0.1.0';
