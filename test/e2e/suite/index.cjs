// Mocha entry run by VS Code's extension host (extensionTestsPath): runs extension.e2e.cjs and prints
// `vscode-e2e: N passed, N failed`. Rejects when a test fails or none ran.
const path = require('node:path');
const { pathToFileURL } = require('node:url');

exports.run = async function run() {
  const { default: Mocha } = await import(pathToFileURL(require.resolve('mocha')).href);
  const mocha = new Mocha({ ui: 'bdd', color: false, timeout: 60000, reporter: 'spec' });
  mocha.addFile(path.resolve(__dirname, 'extension.e2e.cjs'));
  await mocha.loadFilesAsync();
  await new Promise((resolve, reject) => {
    const runner = mocha.run((failures) => {
      const s = runner.stats;
      console.log(`vscode-e2e: ${s.passes} passed, ${s.failures} failed` + (s.pending ? `, ${s.pending} skipped` : ''));
      if (failures > 0) reject(new Error(`${failures} tests failed`));
      else if (s.passes === 0) reject(new Error('no tests ran'));
      else resolve();
    });
  });
};
