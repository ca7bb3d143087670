// Node preload for the MCP conformance CLI (test only). The suite sends no credentials, so this adds
// `Authorization: Bearer $TOKA_CONFORMANCE_TOKEN` to every request it makes: the SDK client's fetch and the
// DNS-rebinding check's undici.request both dispatch through undici's global dispatcher, which is wrapped
// here. The token is minted for the run, so the suite exercises Toka's real auth path.
// $TOKA_CONFORMANCE_SUITE is the suite's install prefix (its own undici is the one to wrap).
import { createRequire } from 'node:module';
import { join } from 'node:path';

const token = process.env.TOKA_CONFORMANCE_TOKEN;
const suite = process.env.TOKA_CONFORMANCE_SUITE;
if (!token || !suite) throw new Error('bearer-preload: TOKA_CONFORMANCE_TOKEN and TOKA_CONFORMANCE_SUITE are required');

const require = createRequire(join(suite, 'node_modules', '@modelcontextprotocol', 'conformance', 'package.json'));
const { getGlobalDispatcher, setGlobalDispatcher } = require('undici');

const withBearer = (dispatch) => (options, handler) => {
  const headers = options.headers;
  if (Array.isArray(headers)) options.headers = [...headers, 'authorization', `Bearer ${token}`];
  else options.headers = { ...(headers ?? {}), authorization: `Bearer ${token}` };
  return dispatch(options, handler);
};
setGlobalDispatcher(getGlobalDispatcher().compose(withBearer));
