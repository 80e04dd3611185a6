// Compiles contracts/*.sol with solc-js (npm `solc`, pinned in package.json) into
// build/contracts/<Name>.json ({abi, bytecode, deployedBytecode}); imports resolve from
// contracts/ and node_modules/ (OpenZeppelin). Run by `make contracts`; exits 1 on any error.
import { createRequire } from 'node:module'
import * as fs from 'node:fs'
import * as path from 'node:path'

const require = createRequire(import.meta.url)
const solc = require('solc')
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const srcDir = path.join(root, 'contracts')
const outDir = path.join(root, 'build', 'contracts')

const sources = {}
for (const f of fs.readdirSync(srcDir).filter((f) => f.endsWith('.sol')).sort()) {
  sources[f] = { content: fs.readFileSync(path.join(srcDir, f), 'utf8') }
}
const input = {
  language: 'Solidity',
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: 'cancun',
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
  },
}
function findImports(p) {
  for (const base of [srcDir, path.join(root, 'node_modules')]) {
    const full = path.join(base, p)
    if (fs.existsSync(full)) return { contents: fs.readFileSync(full, 'utf8') }
  }
  return { error: `import not found: ${p}` }
}
const out = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }))
const errors = (out.errors || []).filter((e) => e.severity === 'error')
for (const e of out.errors || []) console.error(e.formattedMessage)
if (errors.length) process.exit(1)
fs.mkdirSync(outDir, { recursive: true })
let n = 0
for (const file of Object.keys(sources)) {
  for (const [name, c] of Object.entries(out.contracts[file] || {})) {
    const artifact = {
      contractName: name,
      sourceName: `contracts/${file}`,
      compiler: `solc-js ${solc.version()}`,
      abi: c.abi,
      bytecode: '0x' + c.evm.bytecode.object,
      deployedBytecode: '0x' + c.evm.deployedBytecode.object,
    }
    fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(artifact, null, 1) + '\n')
    n++
  }
}
console.log(`compiled ${n} contracts with solc ${solc.version()} into build/contracts/`)
