// Turns handlebars.js spec/*.js into test data: node extract.cjs <spec dir> <out dir>.
// Each expectTemplate(...) chain becomes one JSON case; helpers stay JavaScript
// source text (the Python runner maps the ones it ports), inputs become JSON with
// markers for undefined and functions.
const fs = require('fs');
const path = require('path');
const vm = require('vm');
const log = console.log.bind(console);

const [specDir, outDir] = process.argv.slice(2);
const FILES = ['basic', 'blocks', 'builtins', 'data', 'helpers', 'partials', 'subexpressions',
  'whitespace-control', 'strict', 'regressions'];

function encode(value, seen = new Set()) {
  if (value === undefined) return { $undefined: true };
  if (typeof value === 'function') return { $function: value.toString() };
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !isFinite(value)) return { $number: String(value) };
    return value;
  }
  if (seen.has(value)) return { $cycle: true };
  seen.add(value);
  let out;
  if (Array.isArray(value)) out = value.map((v) => encode(v, seen));
  else if (value instanceof Boolean || value instanceof String || value instanceof Number) out = { $boxed: value.valueOf() };
  else {
    const proto = Object.getPrototypeOf(value);
    out = {};
    if (proto && proto.constructor && proto.constructor.name !== 'Object') out.$class = proto.constructor.name;
    for (const k of Object.keys(value)) out[k] = encode(value[k], seen);
  }
  seen.delete(value);
  return out;
}

for (const file of FILES) {
  const source = fs.readFileSync(path.join(specDir, file + '.js'), 'utf8');
  const cases = [];
  const skipped = [];
  const stack = [];
  let current = null;
  function Bench(template) {
    this.c = { template, input: {}, helpers: {}, partials: {}, decorators: {}, compileOptions: {}, runtimeOptions: {} };
  }
  Bench.prototype.withInput = function (i) { this.c.input = i; return this; };
  Bench.prototype.withHelper = function (n, f) { this.c.helpers[n] = f; return this; };
  Bench.prototype.withHelpers = function (h) { Object.assign(this.c.helpers, h); return this; };
  Bench.prototype.withPartial = function (n, p) { this.c.partials[n] = p; return this; };
  Bench.prototype.withPartials = function (p) { Object.assign(this.c.partials, p); return this; };
  Bench.prototype.withDecorator = function (n, f) { this.c.decorators[n] = f; return this; };
  Bench.prototype.withDecorators = function (d) { Object.assign(this.c.decorators, d); return this; };
  Bench.prototype.withCompileOptions = function (o) { this.c.compileOptions = o; return this; };
  Bench.prototype.withRuntimeOptions = function (o) { this.c.runtimeOptions = o; return this; };
  Bench.prototype.withMessage = function () { return this; };
  Bench.prototype.record = function (extra) {
    const c = this.c;
    const n = cases.filter((x) => x.name === current).length;
    cases.push(Object.assign({
      id: `${file}: ${current}` + (n ? ` #${n + 1}` : ''),
      name: current,
      template: c.template,
      input: encode(c.input),
      helpers: Object.fromEntries(Object.entries(c.helpers).map(([k, v]) => [k, encode(v)])),
      partials: encode(c.partials),
      decorators: Object.keys(c.decorators),
      compileOptions: encode(c.compileOptions),
      runtimeOptions: encode(c.runtimeOptions),
      globalEnv: currentUsesEnv,
    }, extra));
  };
  Bench.prototype.toCompileTo = function (expected) { this.record({ expected }); };
  Bench.prototype.toThrow = function (a, b) {
    const m = typeof a === 'function' ? b : a;
    this.record({ throws: m === undefined ? true : String(m) });
  };
  let currentUsesEnv = false;
  const anything = new Proxy(function () {}, {
    get: (t, k) => (k === Symbol.toPrimitive ? () => '' : anything),
    apply: () => anything,
    construct: () => anything,
  });
  const env = new Proxy({}, { get: () => { currentUsesEnv = true; return anything; } });
  function it(name, fn) {
    current = [...stack, name].join(' / ');
    currentUsesEnv = false;
    try { fn(); } catch (e) { skipped.push({ name: current, reason: 'not extractable: ' + String(e).slice(0, 120) }); }
  }
  it.skip = (name) => skipped.push({ name: [...stack, name].join(' / '), reason: 'skipped upstream (it.skip)' });
  function describe(name, fn) { stack.push(name); try { fn(); } finally { stack.pop(); } }
  describe.skip = () => {};
  const sandbox = {
    describe, it, beforeEach() {}, afterEach() {}, before() {}, after() {},
    expectTemplate: (t) => new Bench(t),
    expect: () => anything, sinon: anything, shouldThrow: anything, equals: anything,
    Handlebars: env, handlebarsEnv: env, CompilerContext: anything,
    console: { log() {}, info() {}, warn() {}, error() {}, debug() {} },
  };
  sandbox.global = sandbox;
  vm.createContext(sandbox);
  vm.runInContext(source.replace(/^import .*$/gm, ''), sandbox, { filename: file + '.js' });
  fs.writeFileSync(path.join(outDir, file + '.json'), JSON.stringify({ source: `handlebars-lang/handlebars.js spec/${file}.js`, cases, skipped }, null, 1) + '\n');
  log(file, cases.length, 'cases', skipped.length, 'not extracted');
}
