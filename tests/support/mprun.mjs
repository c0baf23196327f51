// Run a Python file under real MicroPython (the WebAssembly port, under Node.js).
// usage: node mprun.mjs [--heap BYTES] [--root DIR]... SCRIPT.py
// Each --root DIR is copied into the MicroPython filesystem under /DIRNAME and added to sys.path.
// Exit status: 0 when the script finished, 1 when it raised (traceback on stderr).
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const args = process.argv.slice(2);
let heap = 1024 * 1024;
const roots = [];
let script = null;
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--heap") heap = parseInt(args[++i], 10);
  else if (args[i] === "--root") roots.push(args[++i]);
  else script = args[i];
}
if (!script) {
  process.stderr.write("usage: mprun.mjs [--heap BYTES] [--root DIR]... SCRIPT.py\n");
  process.exit(2);
}
const require = createRequire(import.meta.url);
const pkg = process.env.MICROPYTHON_MJS ||
  require.resolve("@micropython/micropython-webassembly-pyscript/micropython.mjs",
    { paths: [process.env.MICROPYTHON_NODE_PATH || process.cwd()] });
const { loadMicroPython } = await import(pkg);
const mp = await loadMicroPython({
  heapsize: heap,
  linebuffer: false,
  stdout: (data) => process.stdout.write(data),
  stderr: (data) => process.stderr.write(data),
});

function copyTree(src, dst) {
  try { mp.FS.mkdir(dst); } catch (e) { /* exists */ }
  for (const name of fs.readdirSync(src)) {
    if (name === "__pycache__" || name.startsWith(".")) continue;
    const s = path.join(src, name);
    const d = dst + "/" + name;
    if (fs.statSync(s).isDirectory()) copyTree(s, d);
    else if (name.endsWith(".py") || name.endsWith(".json") || name.endsWith(".mpy")) mp.FS.writeFile(d, fs.readFileSync(s));
  }
}
const paths = [];
for (const root of roots) {
  const abs = path.resolve(root);
  const mount = "/" + path.basename(abs);
  copyTree(abs, mount);
  paths.push("/");
}
const code = fs.readFileSync(script, "utf8");
try {
  mp.runPython("import sys\nif '/' not in sys.path: sys.path.insert(0, '/')\n");
  mp.runPython(code);
} catch (err) {
  process.stderr.write(String(err && err.message ? err.message : err) + "\n");
  process.exit(1);
}
process.exit(0);
