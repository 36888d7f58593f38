// Runs a wasm32-wasip1 build of scopegate-bench in Node's V8 through node:wasi, with this
// process's stdin, stdout and stderr: `node bench/run-wasm.mjs file.wasm < decisions.json`.
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import process from 'node:process';

const file = process.argv[2];
if (!file) {
  console.error('usage: node bench/run-wasm.mjs scopegate_bench.wasm < tests/vectors/decisions.json');
  process.exit(2);
}
const wasi = new WASI({ version: 'preview1', args: process.argv.slice(2), env: {}, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(file));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
